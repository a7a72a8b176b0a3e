/* GGUF type tables and Ollama-style summaries (see gguf.h): tensor type
 * traits, value type names, general.file_type names, parameter-size strings.
 * Pure functions over static tables; no state. */
#include "inference/gguf.h"

#include <inttypes.h>
#include <stdio.h>

/* ---- type traits ------------------------------------------------------ */

typedef struct ttraits {
    const char *name;
    uint32_t block;       /* elements per block; 0 = unknown type */
    uint32_t block_bytes; /* bytes per block */
} ttraits_t;

/* Indexed by ggml type id. Holes are ids ggml retired (Q4_2, Q4_3, the
 * repacked Q4_0_x_y); files using them are rejected as unknown. The IQ and TQ
 * types are listed so their files can still be opened and summarised even if
 * the engine cannot run them. */
static const ttraits_t ttraits[GGML_T_COUNT] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},       [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},    [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},    [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144}, [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292}, [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},      [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},      [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},     [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};

static const ttraits_t *ttraits_get(int type)
{
    if (type < 0 || type >= GGML_T_COUNT || ttraits[type].block == 0)
        return NULL;
    return &ttraits[type];
}

const char *gguf_ttype_name(int type)
{
    const ttraits_t *t = ttraits_get(type);
    return t ? t->name : NULL;
}

uint64_t gguf_ttype_block(int type)
{
    const ttraits_t *t = ttraits_get(type);
    return t ? t->block : 0;
}

uint64_t gguf_ttype_block_bytes(int type)
{
    const ttraits_t *t = ttraits_get(type);
    return t ? t->block_bytes : 0;
}

static const char *const vtype_names[] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};

const char *gguf_vtype_name(int type)
{
    if (type < 0 || type > GGUF_T_FLOAT64)
        return NULL;
    return vtype_names[type];
}

/* ---- summaries -------------------------------------------------------------- */

/* llama.cpp's LLAMA_FTYPE numbering, as Ollama reports it. */
const char *gguf_file_type_name(uint32_t ft)
{
    static const char *const names[] = {
        [0] = "F32",      [1] = "F16",      [2] = "Q4_0",    [3] = "Q4_1",
        [7] = "Q8_0",     [8] = "Q5_0",     [9] = "Q5_1",    [10] = "Q2_K",
        [11] = "Q3_K_S",  [12] = "Q3_K_M",  [13] = "Q3_K_L", [14] = "Q4_K_S",
        [15] = "Q4_K_M",  [16] = "Q5_K_S",  [17] = "Q5_K_M", [18] = "Q6_K",
        [19] = "IQ2_XXS", [20] = "IQ2_XS",  [21] = "Q2_K_S", [22] = "IQ3_XS",
        [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL", [26] = "IQ3_S",
        [27] = "IQ3_M",   [28] = "IQ2_S",   [29] = "IQ2_M",  [30] = "IQ4_XS",
        [31] = "IQ1_M",   [32] = "BF16",    [36] = "TQ1_0",  [37] = "TQ2_0",
        [38] = "MXFP4",
    };
    if (ft < sizeof names / sizeof names[0] && names[ft])
        return names[ft];
    return "unknown";
}

/* Ollama's format.HumanNumber: B with one decimal, M with two, K with none;
 * whole numbers drop the decimals. */
void gguf_param_size_str(uint64_t n, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    if (n >= 1000000000ull) {
        double x = (double)n / 1e9;
        snprintf(out, cap, x == (double)(uint64_t)x ? "%.0fB" : "%.1fB", x);
    } else if (n >= 1000000ull) {
        double x = (double)n / 1e6;
        snprintf(out, cap, x == (double)(uint64_t)x ? "%.0fM" : "%.2fM", x);
    } else if (n >= 1000ull) {
        snprintf(out, cap, "%.0fK", (double)n / 1e3);
    } else {
        snprintf(out, cap, "%" PRIu64, n);
    }
}
