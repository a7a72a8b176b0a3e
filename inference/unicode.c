/* UTF-8 and character classes; see unicode.h. */
#include "inference/unicode.h"

#include "unicode_tables.h"

unsigned ux_flags(uint32_t cp)
{
    if (cp < 0x80) {
        /* ASCII fast path: the bulk of real text. */
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
            return UX_LETTER;
        if (cp >= '0' && cp <= '9')
            return UX_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
            return UX_SPACE;
        return 0;
    }
    size_t lo = 0, hi = UX_RANGES_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < ux_ranges[mid].lo)
            hi = mid;
        else if (cp > ux_ranges[mid].hi)
            lo = mid + 1;
        else
            return ux_ranges[mid].flags;
    }
    return 0;
}

size_t ux_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0 && c >= 0xC2)
        return 2;
    if ((c & 0xF0) == 0xE0)
        return 3;
    if ((c & 0xF8) == 0xF0 && c <= 0xF4)
        return 4;
    return 1;
}

size_t ux_decode(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len = ux_seq_len(c);
    if (len == 1 || len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3F);
    }
    /* Reject overlong forms, surrogates and values past U+10FFFF. */
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return len;
}

size_t ux_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ux_incomplete_tail(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    /* Walk back over at most 3 continuation bytes to the lead byte. */
    size_t k = 0;
    while (k < n && k < 3 && (u[n - 1 - k] & 0xC0) == 0x80)
        k++;
    if (k == n)
        return 0;
    unsigned char lead = u[n - 1 - k];
    size_t want = ux_seq_len(lead);
    if (want == 1)
        return 0; /* ASCII or an invalid lead: nothing to wait for */
    return (k + 1 < want) ? k + 1 : 0;
}
