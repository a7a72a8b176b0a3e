/* Pull: fetches a model from a registry (Ollama's, or another ollamax's /v2
 * endpoints) into the local store, on the loop, with resumable parallel
 * ranged downloads. The HTTP entry point is api_route_pull (api/routes.h).
 *
 * A blob being downloaded lives in cas_partial_path() (tmp/sha256-<hex>-
 * partial) next to a sidecar "<partial>.parts" that records, per part, how
 * many bytes from its start are written and fsynced. The sidecar is only
 * rewritten after the partial file has been fdatasync'ed, so it never claims
 * bytes that are not on disk; a sidecar that does not parse or does not match
 * the plan restarts the blob from zero.
 *
 * The pure helpers below are exposed for the unit tests. */
#ifndef OX_API_PULL_H
#define OX_API_PULL_H

#include <stddef.h>
#include <stdint.h>

#include "api/routes.h"
#include "cas/cas.h"

#define PULL_PART_MIN (100ull * 1000 * 1000)
#define PULL_PART_MAX (1000ull * 1000 * 1000)
#define PULL_MAX_PARALLEL 16

typedef struct pull_part {
    uint64_t start;   /* first byte */
    uint64_t len;     /* bytes in this part */
    uint64_t done;    /* bytes written from start (a contiguous prefix) */
} pull_part_t;

/* Splits total bytes into parts of total/16 clamped to [min_part, max_part]
 * (the last part takes the remainder; one part of 0 bytes for an empty blob).
 * *parts is malloc'd (caller frees), done fields 0. OX_EINVAL when min_part is
 * 0 or greater than max_part. */
int pull_plan(uint64_t total, uint64_t min_part, uint64_t max_part, pull_part_t **parts,
              size_t *n);

/* Base URL "<scheme>://<host>/v2/<ns>/<model>/" (scheme http when insecure or
 * when the name said http://). OX_ETOOBIG if it does not fit. */
int pull_base_url(const cas_name_t *n, int insecure, char *out, size_t cap);

/* Resolves a Location header against the URL it came from (absolute URLs,
 * "//host/..." and "/path" forms). OX_EINVAL for anything else. */
int pull_url_resolve(const char *base, const char *loc, char *out, size_t cap);

typedef struct pull_auth {
    char realm[512];
    char service[256];
    char scope[512];
} pull_auth_t;

/* Parses `Bearer realm="...",service="...",scope="..."` (quoted or bare
 * values, any order, unknown keys ignored, scheme case-insensitive).
 * OX_EINVAL when it is not Bearer or has no realm. */
int pull_www_auth_parse(const char *hdr, pull_auth_t *out);
/* Token URL: realm?service=<enc>&scope=<enc> (keys left out when empty). */
int pull_token_url(const pull_auth_t *a, char *out, size_t cap);

/* Sidecar text for a blob: a header line, digest, total, then one line per
 * part, then a checksum line over everything before it. malloc'd, caller
 * frees; NULL on OOM. */
char *pull_sidecar_format(const char *digest, uint64_t total, const pull_part_t *parts,
                          size_t n, size_t *len);
/* Reads a sidecar back into parts (planned by the caller for the same total):
 * fills each parts[i].done. Returns OX_EFORMAT (parts' done untouched) when
 * the text is truncated or corrupt, names another digest or size, has another
 * plan, or claims bytes beyond partial_size (the partial file's length). */
int pull_sidecar_parse(const char *text, size_t len, const char *digest, uint64_t total,
                       uint64_t partial_size, pull_part_t *parts, size_t n);

/* Where the download of digest (total bytes) into the partial file open as
 * fd resumes: plans the parts (pull_plan with min_part) and fills their done
 * counts from the sidecar at sidecar_path when it is usable. When it is not
 * (missing, truncated, corrupt, another plan, claims bytes past the end of
 * the partial), the partial is truncated to 0 and the sidecar removed, so the
 * blob restarts from zero; *restarted tells whether anything was discarded.
 * *parts is malloc'd (caller frees). OX_EIO when the files cannot be fixed. */
int pull_resume_prepare(int fd, const char *sidecar_path, const char *digest, uint64_t total,
                        uint64_t min_part, pull_part_t **parts, size_t *n, int *restarted);

#endif
