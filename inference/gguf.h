/* GGUF reader: header, metadata and tensor infos of a GGUF v2/v3 file.
 *
 * The file is mmapped read-only; nothing is copied except the small index of
 * keys and tensors. Every offset and length is bounds-checked against the file
 * size, so a truncated or hostile file gives OX_EFORMAT and a clear message,
 * never a crash or an over-read. Limits: at most 1<<20 metadata keys and
 * 1<<20 tensors, strings up to 1 GiB, arrays nested at most 4 deep, tensors of
 * at most 4 dimensions.
 *
 * A gguf_t owns its mapping; pointers into it (strings, arrays, tensor data)
 * stay valid until gguf_close. Thread-safe for readers after open. */
#ifndef OX_GGUF_H
#define OX_GGUF_H

#include <stddef.h>
#include <stdint.h>

typedef enum gguf_vtype {
    GGUF_T_UINT8 = 0, GGUF_T_INT8 = 1, GGUF_T_UINT16 = 2, GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4, GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_UINT64 = 10, GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12,
} gguf_vtype_t;

/* ggml tensor types (numbering as in the GGUF spec). */
typedef enum gguf_ttype {
    GGML_T_F32 = 0, GGML_T_F16 = 1, GGML_T_Q4_0 = 2, GGML_T_Q4_1 = 3, GGML_T_Q5_0 = 6,
    GGML_T_Q5_1 = 7, GGML_T_Q8_0 = 8, GGML_T_Q8_1 = 9, GGML_T_Q2_K = 10, GGML_T_Q3_K = 11,
    GGML_T_Q4_K = 12, GGML_T_Q5_K = 13, GGML_T_Q6_K = 14, GGML_T_Q8_K = 15,
    GGML_T_I8 = 24, GGML_T_I16 = 25, GGML_T_I32 = 26, GGML_T_I64 = 27, GGML_T_F64 = 28,
    GGML_T_BF16 = 30, GGML_T_COUNT = 40
} gguf_ttype_t;

typedef struct gguf_str {
    const char *p; /* not NUL-terminated; points into the mapping */
    uint64_t len;
} gguf_str_t;

typedef struct gguf_value {
    gguf_vtype_t type;
    union {
        uint64_t u;   /* UINT8..UINT64, BOOL */
        int64_t i;    /* INT8..INT64 */
        double f;     /* FLOAT32, FLOAT64 */
        gguf_str_t s; /* STRING */
        struct {
            gguf_vtype_t type; /* element type */
            uint64_t n;
            const uint8_t *data; /* raw elements in the mapping (strings are
                                    length-prefixed: use gguf_arr_str) */
        } arr;
    } v;
} gguf_value_t;

typedef struct gguf_kv {
    gguf_str_t key;
    gguf_value_t val;
    /* For a top-level array of strings: offset of each element's length
     * prefix relative to val.v.arr.data, built at open (owned by the gguf);
     * NULL otherwise. Lets gguf_arr_str run in O(1) without mutable state. */
    const uint64_t *str_off;
} gguf_kv_t;

typedef struct gguf_tensor {
    gguf_str_t name;
    uint32_t n_dims;
    uint64_t ne[4];        /* ne[0] is the fastest-moving (row length) */
    gguf_ttype_t type;
    uint64_t offset;       /* relative to the data section */
    uint64_t size;         /* bytes, computed from type and shape */
    const void *data;      /* in the mapping; bounds-checked at open */
} gguf_tensor_t;

typedef struct gguf {
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv_t *kv;          /* owned index */
    gguf_tensor_t *tensors; /* owned index */
    uint64_t alignment;
    uint64_t data_offset;   /* file offset of the data section */
    const uint8_t *map;
    uint64_t file_size;
} gguf_t;

/* Opens and validates path. On failure returns OX_EFORMAT (message in err),
 * OX_ENOTFOUND or OX_EIO; nothing is left open. *out is owned by the caller
 * (gguf_close). */
int gguf_open(const char *path, gguf_t **out, char *err, size_t errlen);
/* Same over a caller-owned buffer (kept, not copied; must outlive the gguf). */
int gguf_open_buffer(const void *p, size_t n, gguf_t **out, char *err, size_t errlen);
void gguf_close(gguf_t *g);

/* Look-ups; NULL when absent. Key comparison is exact. */
const gguf_kv_t *gguf_find(const gguf_t *g, const char *key);
const gguf_tensor_t *gguf_tensor(const gguf_t *g, const char *name);

/* Typed getters: return 0 and fill *out, OX_ENOTFOUND when absent, OX_EFORMAT
 * when the type does not fit (any integer type converts to u64/i64 when the
 * value fits; bool reads as 0/1). gguf_get_f64 also accepts integer values,
 * which some converters use for float hyper-parameters. gguf_get_str fills a
 * NUL-terminated copy (truncated to cap). */
int gguf_get_u64(const gguf_t *g, const char *key, uint64_t *out);
int gguf_get_i64(const gguf_t *g, const char *key, int64_t *out);
int gguf_get_f64(const gguf_t *g, const char *key, double *out);
int gguf_get_str(const gguf_t *g, const char *key, char *out, size_t cap);

/* Element i of a top-level array of strings: 0, OX_ENOTFOUND when i is out of
 * range, OX_EFORMAT when kv is not an array of strings. O(1) through the
 * offsets indexed at open; out points into the mapping. */
int gguf_arr_str(const gguf_kv_t *kv, uint64_t i, gguf_str_t *out);

/* Name ("Q4_K"), block size (elements) and bytes per block of a tensor type;
 * NULL/0 for unknown types. */
const char *gguf_ttype_name(int type);
uint64_t gguf_ttype_block(int type);
uint64_t gguf_ttype_block_bytes(int type);
/* Name of a value type ("string", "uint32", ...). */
const char *gguf_vtype_name(int type);

/* Ollama-style summaries used by /api/show and the config blob:
 * file type name from general.file_type ("Q4_K_M", "Q8_0", "F16", ...), and a
 * parameter count rendered like "1.2B" / "494.03M". */
const char *gguf_file_type_name(uint32_t ft);
uint64_t gguf_param_count(const gguf_t *g);
void gguf_param_size_str(uint64_t n, char *out, size_t cap);

#endif
