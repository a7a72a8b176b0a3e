/* format:"json": an incremental checker of "is this text a prefix of a JSON
 * object?" and the shortest text that completes such a prefix, appended when
 * the token budget runs out so the answer always parses (the sampler keeps
 * the tokens themselves valid). */
#include <string.h>

#include "common/err.h"
#include "inference/runner_int.h"

enum {
    S_ROOT,       /* nothing yet: '{' */
    S_VALUE,      /* a value must start */
    S_ARR_FIRST,  /* after '[': value or ']' */
    S_OBJ_FIRST,  /* after '{': '"' or '}' */
    S_OBJ_KEY,    /* after ',' in an object: '"' */
    S_COLON,      /* after a key: ':' */
    S_AFTER,      /* after a value: ',' or the closer */
    S_STR,
    S_STR_ESC,
    S_STR_U,
    S_NUM_MINUS,  /* after '-': digit */
    S_NUM_ZERO,   /* "0": '.', 'e' or end */
    S_NUM_INT,    /* digits: digit, '.', 'e' or end */
    S_NUM_DOT,    /* after '.': digit */
    S_NUM_FRAC,   /* digit, 'e' or end */
    S_NUM_E,      /* after 'e': sign or digit */
    S_NUM_ESIGN,  /* digit */
    S_NUM_EXP,    /* digit or end */
    S_LIT,        /* inside true/false/null */
    S_DONE,
};

void rjson_init(rjson_t *j)
{
    memset(j, 0, sizeof *j);
    j->state = S_ROOT;
}

int rjson_done(const rjson_t *j)
{
    return j->state == S_DONE;
}

static void after_value(rjson_t *j)
{
    j->state = j->depth == 0 ? S_DONE : S_AFTER;
}

static int open_container(rjson_t *j, char c)
{
    if (j->depth >= (int)sizeof j->stack)
        return -1;
    j->stack[j->depth++] = c;
    j->state = c == '{' ? S_OBJ_FIRST : S_ARR_FIRST;
    return 0;
}

static int value_start(rjson_t *j, char c)
{
    switch (c) {
    case '{':
    case '[':
        return open_container(j, c);
    case '"':
        j->state = S_STR;
        j->in_key = 0;
        return 0;
    case '-':
        j->state = S_NUM_MINUS;
        return 0;
    case '0':
        j->state = S_NUM_ZERO;
        return 0;
    case 't':
        j->lit = "true";
        break;
    case 'f':
        j->lit = "false";
        break;
    case 'n':
        j->lit = "null";
        break;
    default:
        if (c >= '1' && c <= '9') {
            j->state = S_NUM_INT;
            return 0;
        }
        return -1;
    }
    j->lit_pos = 1;
    j->state = S_LIT;
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int feed1(rjson_t *j, char c)
{
    if (is_ws(c)) {
        switch (j->state) {
        case S_STR:
        case S_STR_ESC:
        case S_STR_U:
            break; /* judged below */
        case S_NUM_ZERO:
        case S_NUM_INT:
        case S_NUM_FRAC:
        case S_NUM_EXP:
            after_value(j);
            return 0;
        case S_NUM_MINUS:
        case S_NUM_DOT:
        case S_NUM_E:
        case S_NUM_ESIGN:
        case S_LIT:
            return -1;
        default:
            return 0;
        }
    }
    switch (j->state) {
    case S_ROOT:
        return c == '{' ? open_container(j, c) : -1;
    case S_VALUE:
        return value_start(j, c);
    case S_ARR_FIRST:
        if (c == ']') {
            j->depth--;
            after_value(j);
            return 0;
        }
        return value_start(j, c);
    case S_OBJ_FIRST:
    case S_OBJ_KEY:
        if (c == '}' && j->state == S_OBJ_FIRST) {
            j->depth--;
            after_value(j);
            return 0;
        }
        if (c != '"')
            return -1;
        j->state = S_STR;
        j->in_key = 1;
        return 0;
    case S_COLON:
        if (c != ':')
            return -1;
        j->state = S_VALUE;
        return 0;
    case S_AFTER: {
        char top = j->stack[j->depth - 1];
        if (c == ',') {
            j->state = top == '{' ? S_OBJ_KEY : S_VALUE;
            return 0;
        }
        if ((top == '{' && c == '}') || (top == '[' && c == ']')) {
            j->depth--;
            after_value(j);
            return 0;
        }
        return -1;
    }
    case S_STR:
        if (c == '"') {
            if (j->in_key)
                j->state = S_COLON;
            else
                after_value(j);
        } else if (c == '\\') {
            j->state = S_STR_ESC;
        } else if ((unsigned char)c < 0x20) {
            return -1;
        }
        return 0;
    case S_STR_ESC:
        if (c == 'u') {
            j->state = S_STR_U;
            j->hex_left = 4;
            return 0;
        }
        if (!strchr("\"\\/bfnrt", c) || c == 0)
            return -1;
        j->state = S_STR;
        return 0;
    case S_STR_U:
        if (!is_hex(c))
            return -1;
        if (--j->hex_left == 0)
            j->state = S_STR;
        return 0;
    case S_NUM_MINUS:
        if (c == '0')
            j->state = S_NUM_ZERO;
        else if (is_digit(c))
            j->state = S_NUM_INT;
        else
            return -1;
        return 0;
    case S_NUM_ZERO:
    case S_NUM_INT:
        if (is_digit(c) && j->state == S_NUM_INT)
            return 0;
        if (c == '.') {
            j->state = S_NUM_DOT;
            return 0;
        }
        if (c == 'e' || c == 'E') {
            j->state = S_NUM_E;
            return 0;
        }
        after_value(j);
        return j->state == S_DONE ? -1 : feed1(j, c);
    case S_NUM_DOT:
        if (!is_digit(c))
            return -1;
        j->state = S_NUM_FRAC;
        return 0;
    case S_NUM_FRAC:
        if (is_digit(c))
            return 0;
        if (c == 'e' || c == 'E') {
            j->state = S_NUM_E;
            return 0;
        }
        after_value(j);
        return j->state == S_DONE ? -1 : feed1(j, c);
    case S_NUM_E:
        if (c == '+' || c == '-') {
            j->state = S_NUM_ESIGN;
            return 0;
        }
        /* fall through */
    case S_NUM_ESIGN:
        if (!is_digit(c))
            return -1;
        j->state = S_NUM_EXP;
        return 0;
    case S_NUM_EXP:
        if (is_digit(c))
            return 0;
        after_value(j);
        return j->state == S_DONE ? -1 : feed1(j, c);
    case S_LIT:
        if (c != j->lit[j->lit_pos])
            return -1;
        if (j->lit[++j->lit_pos] == 0)
            after_value(j);
        return 0;
    default: /* S_DONE: nothing may follow */
        return -1;
    }
}

int rjson_feed(rjson_t *j, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (feed1(j, s[i]) != 0)
            return -1;
    return 0;
}

int rjson_close(const rjson_t *j, ox_buf_t *out)
{
    int rc = 0;
    switch (j->state) {
    case S_ROOT:
        return ox_buf_puts(out, "{}");
    case S_DONE:
        return 0;
    case S_VALUE:
        rc = ox_buf_puts(out, "null");
        break;
    case S_OBJ_KEY:
        rc = ox_buf_puts(out, "\"\":null");
        break;
    case S_COLON:
        rc = ox_buf_puts(out, ":null");
        break;
    case S_STR:
        rc = ox_buf_puts(out, j->in_key ? "\":null" : "\"");
        break;
    case S_STR_ESC:
        rc = ox_buf_puts(out, j->in_key ? "n\":null" : "n\"");
        break;
    case S_STR_U:
        /* end on 1, not 0: strict parsers refuse \u0000 */
        for (int i = 0; i < j->hex_left && rc == 0; i++)
            rc = ox_buf_puts(out, i == j->hex_left - 1 ? "1" : "0");
        if (rc == 0)
            rc = ox_buf_puts(out, j->in_key ? "\":null" : "\"");
        break;
    case S_NUM_MINUS:
    case S_NUM_DOT:
    case S_NUM_E:
    case S_NUM_ESIGN:
        rc = ox_buf_puts(out, "0");
        break;
    case S_LIT:
        rc = ox_buf_puts(out, j->lit + j->lit_pos);
        break;
    default: /* S_ARR_FIRST, S_OBJ_FIRST, S_AFTER, complete numbers */
        break;
    }
    for (int d = j->depth - 1; d >= 0 && rc == 0; d--)
        rc = ox_buf_append(out, j->stack[d] == '{' ? "}" : "]", 1);
    return rc;
}
