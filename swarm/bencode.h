/* bencode writer: just enough to emit the canonical info dict of our v2
 * torrents. Callers emit dict keys in sorted order themselves (the recipe is
 * fixed, so the order is written once in torrent.c). Each function appends to
 * b and returns 0 or OX_ENOMEM. */
#ifndef OX_SWARM_BENCODE_H
#define OX_SWARM_BENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

int bencode_int(ox_buf_t *b, int64_t v);
int bencode_bytes(ox_buf_t *b, const void *p, size_t n);
int bencode_str(ox_buf_t *b, const char *s);
/* 'd', 'l' or 'e' */
int bencode_tag(ox_buf_t *b, char tag);

#endif
