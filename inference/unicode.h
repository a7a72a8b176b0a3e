/* Unicode helpers for the tokenizers: UTF-8 decoding and the character classes
 * (\p{L}, \p{N}, \s) of the pre-tokenizer regexes.
 *
 * The class tables are generated at build time by gen_unicode.py from Python's
 * unicodedata (see module.cmake). All functions are pure and thread-safe. */
#ifndef OX_UNICODE_H
#define OX_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum { UX_LETTER = 1, UX_NUMBER = 2, UX_SPACE = 4 };

/* Class bits (UX_*) of code point cp; 0 for anything else. */
unsigned ux_flags(uint32_t cp);

/* Decodes one UTF-8 sequence at s[0..n). Returns its length (1..4) and stores
 * the code point; an invalid or truncated sequence counts as one byte with
 * *cp = 0xFFFD, so callers always make progress. n must be > 0. */
size_t ux_decode(const char *s, size_t n, uint32_t *cp);

/* Length of the UTF-8 sequence announced by lead byte c (1 for invalid leads). */
size_t ux_seq_len(unsigned char c);

/* Encodes cp as UTF-8 into out (4 bytes room); returns the length. */
size_t ux_encode(uint32_t cp, char *out);

/* Number of bytes at the end of s[0..n) that form an incomplete (but so far
 * valid) UTF-8 sequence; 0 when s ends on a character boundary. Used by the
 * streaming detokenizer to hold back partial characters. */
size_t ux_incomplete_tail(const char *s, size_t n);

#endif
