# Included from ox_module(inference): `name` is "inference", target ox_inference.
# The Unicode class tables of the tokenizer are generated from Python's
# unicodedata at build time (never typed by hand).
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/gen/unicode_tables.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/gen
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/inference/gen_unicode.py
          ${CMAKE_BINARY_DIR}/gen/unicode_tables.h
  DEPENDS ${CMAKE_SOURCE_DIR}/inference/gen_unicode.py
  COMMENT "Generating Unicode tables"
  VERBATIM)
add_custom_target(ox_inference_unicode_tables DEPENDS ${CMAKE_BINARY_DIR}/gen/unicode_tables.h)
add_dependencies(ox_${name} ox_inference_unicode_tables)

# ox_tokdump: encodes a corpus with the C tokenizer; driven by
# tests/integration/test_tokenizer_ref.py against the npm reference encoders.
add_executable(ox_tokdump ${CMAKE_SOURCE_DIR}/tests/tokenizer/tokdump.c)
target_link_libraries(ox_tokdump PRIVATE ox_${name} ox_common)
