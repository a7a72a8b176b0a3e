/* Byte-level JSON recogniser for format:"json": accepts exactly the prefixes
 * of one JSON object (plus bounded whitespace), like the GBNF JSON grammar
 * Ollama hands llama.cpp. */
#include "inference/sampler.h"

#include <string.h>

enum {
    J_START, J_VALUE, J_ARR_FIRST, J_OBJ_FIRST, J_OBJ_KEY, J_COLON, J_AFTER, J_STR, J_ESC,
    J_HEX, J_NUM, J_LIT, J_DONE, J_BAD,
};

/* Number phases; the odd-looking numbering keeps "may end here" in one test. */
enum { N_MINUS = 1, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

static const char *const literals[] = {"true", "false", "null"};

void smp_json_init(smp_json_t *j)
{
    memset(j, 0, sizeof(*j));
    j->st = J_START;
}

bool smp_json_complete(const smp_json_t *j)
{
    return j->st == J_DONE;
}

bool smp_json_in_string(const smp_json_t *j)
{
    return j->st == J_STR && j->utf8_left == 0;
}

static bool top_is_object(const smp_json_t *j)
{
    unsigned d = j->depth - 1u;
    return (j->stack[d >> 6] >> (d & 63)) & 1u;
}

static bool push(smp_json_t *j, bool object)
{
    if (j->depth >= SMP_JSON_MAX_DEPTH)
        return false;
    unsigned d = j->depth++;
    if (object)
        j->stack[d >> 6] |= 1ull << (d & 63);
    else
        j->stack[d >> 6] &= ~(1ull << (d & 63));
    return true;
}

static void value_done(smp_json_t *j)
{
    j->st = j->depth == 0 ? J_DONE : J_AFTER;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Starts a value with byte c (states J_VALUE / J_ARR_FIRST). */
static bool start_value(smp_json_t *j, unsigned char c)
{
    switch (c) {
    case '{':
        j->st = J_OBJ_FIRST;
        return push(j, true);
    case '[':
        j->st = J_ARR_FIRST;
        return push(j, false);
    case '"':
        j->st = J_STR;
        j->in_key = 0;
        return true;
    case '-':
        j->st = J_NUM;
        j->sub = N_MINUS;
        return true;
    case 't':
    case 'f':
    case 'n':
        j->st = J_LIT;
        j->lit = c == 't' ? 0 : c == 'f' ? 1 : 2;
        j->sub = 1;
        return true;
    default:
        if (is_digit(c)) {
            j->st = J_NUM;
            j->sub = c == '0' ? N_ZERO : N_INT;
            return true;
        }
        return false;
    }
}

static bool close_container(smp_json_t *j, unsigned char c)
{
    if (j->depth == 0 || top_is_object(j) != (c == '}'))
        return false;
    j->depth--;
    value_done(j);
    return true;
}

static bool step(smp_json_t *j, unsigned char c)
{
    bool ws_ok = j->st != J_START && j->st != J_STR && j->st != J_ESC && j->st != J_HEX &&
                 j->st != J_NUM && j->st != J_LIT;
    if (ws_ok && is_ws(c))
        return ++j->ws <= SMP_JSON_MAX_WS;
    if (j->st != J_STR)
        j->ws = 0;
    switch (j->st) {
    case J_START:
        if (c != '{')
            return false;
        j->st = J_OBJ_FIRST;
        return push(j, true);
    case J_VALUE:
        return start_value(j, c);
    case J_ARR_FIRST:
        return c == ']' ? close_container(j, c) : start_value(j, c);
    case J_OBJ_FIRST:
        if (c == '}')
            return close_container(j, c);
        /* fall through */
    case J_OBJ_KEY:
        if (c != '"')
            return false;
        j->st = J_STR;
        j->in_key = 1;
        return true;
    case J_COLON:
        if (c != ':')
            return false;
        j->st = J_VALUE;
        return true;
    case J_AFTER:
        if (c == ',') {
            j->st = top_is_object(j) ? J_OBJ_KEY : J_VALUE;
            return true;
        }
        return (c == '}' || c == ']') && close_container(j, c);
    case J_STR:
        if (j->utf8_left) {
            if (c < j->u8lo || c > j->u8hi)
                return false;
            j->utf8_left--;
            j->u8lo = 0x80;
            j->u8hi = 0xBF;
            return true;
        }
        if (c == '"') {
            if (j->in_key)
                j->st = J_COLON;
            else
                value_done(j);
            return true;
        }
        if (c == '\\') {
            j->st = J_ESC;
            return true;
        }
        if (c < 0x20 || c == 0x7F)
            return false;
        if (c >= 0x80) {
            /* Well-formed UTF-8 only (no overlongs, surrogates or values
             * past U+10FFFF): the first continuation byte's range depends
             * on the lead byte. */
            j->u8lo = 0x80;
            j->u8hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                j->utf8_left = 1;
            } else if (c >= 0xE0 && c <= 0xEF) {
                j->utf8_left = 2;
                if (c == 0xE0)
                    j->u8lo = 0xA0;
                else if (c == 0xED)
                    j->u8hi = 0x9F;
            } else if (c >= 0xF0 && c <= 0xF4) {
                j->utf8_left = 3;
                if (c == 0xF0)
                    j->u8lo = 0x90;
                else if (c == 0xF4)
                    j->u8hi = 0x8F;
            } else {
                return false;
            }
        }
        return true;
    case J_ESC:
        if (c == 'u') {
            j->st = J_HEX;
            j->sub = 0;
            return true;
        }
        if (!strchr("\"\\/bfnrt", c) || c == 0)
            return false;
        j->st = J_STR;
        return true;
    case J_HEX:
        if (!is_digit(c) && !((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))
            return false;
        if (++j->sub == 4)
            j->st = J_STR;
        return true;
    case J_NUM:
        switch (j->sub) {
        case N_MINUS:
            if (!is_digit(c))
                return false;
            j->sub = c == '0' ? N_ZERO : N_INT;
            return true;
        case N_ZERO:
        case N_INT:
            if (is_digit(c) && j->sub == N_INT)
                return true;
            if (c == '.') {
                j->sub = N_DOT;
                return true;
            }
            if (c == 'e' || c == 'E') {
                j->sub = N_E;
                return true;
            }
            break; /* the number ends here; c belongs to what follows */
        case N_DOT:
            if (!is_digit(c))
                return false;
            j->sub = N_FRAC;
            return true;
        case N_FRAC:
            if (is_digit(c))
                return true;
            if (c == 'e' || c == 'E') {
                j->sub = N_E;
                return true;
            }
            break;
        case N_E:
            if (c == '+' || c == '-') {
                j->sub = N_ESIGN;
                return true;
            }
            /* fall through */
        case N_ESIGN:
            if (!is_digit(c))
                return false;
            j->sub = N_EXP;
            return true;
        case N_EXP:
            if (is_digit(c))
                return true;
            break;
        default:
            return false;
        }
        value_done(j);
        return step(j, c);
    case J_LIT: {
        const char *l = literals[j->lit];
        if ((unsigned char)l[j->sub] != c)
            return false;
        if (l[++j->sub] == 0)
            value_done(j);
        return true;
    }
    case J_DONE:
    default:
        return false;
    }
}

bool smp_json_feed(smp_json_t *j, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!step(j, (unsigned char)p[i])) {
            j->st = J_BAD;
            return false;
        }
    }
    return true;
}
