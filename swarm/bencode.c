/* bencode writer (BEP 3 encoding). */
#include "swarm/bencode.h"

#include <inttypes.h>
#include <string.h>

int bencode_int(ox_buf_t *b, int64_t v)
{
    return ox_buf_printf(b, "i%" PRId64 "e", v);
}

int bencode_bytes(ox_buf_t *b, const void *p, size_t n)
{
    int rc = ox_buf_printf(b, "%zu:", n);
    return rc ? rc : ox_buf_append(b, p, n);
}

int bencode_str(ox_buf_t *b, const char *s)
{
    return bencode_bytes(b, s, strlen(s));
}

int bencode_tag(ox_buf_t *b, char tag)
{
    return ox_buf_append(b, &tag, 1);
}
