/* The registry protocol served from the local store, so a stock `ollama pull
 * --insecure host:port/ns/model` or another ollamax can pull from this node:
 *   GET  /v2/                                  -> 200 {}
 *   GET|HEAD /v2/<ns>/<model>/manifests/<tag>  -> the manifest bytes as stored
 *   GET|HEAD /v2/<ns>/<model>/blobs/<digest>   -> the blob, Range supported
 * A blob answer always carries Location (its own path): Ollama's puller reads
 * it from the first GET and sends its ranged GETs there. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_int.h"
#include "common/err.h"

#define CT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

static void registry_error(http_req_t *req, int status, const char *code, const char *msg)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(msg));
    json_t *arr = json_array();
    json_array_append_new(arr, e);
    json_t *o = json_object();
    json_object_set_new(o, "errors", arr);
    api_json(req, status, o);
}

/* Splits "a/b/kind/ref" (after /v2/) into ns, model, kind, ref. */
static int split_path(const char *p, char *ns, char *model, char *kind, char *ref, size_t cap)
{
    char *parts[4] = {ns, model, kind, ref};
    for (int i = 0; i < 4; i++) {
        const char *e = i < 3 ? strchr(p, '/') : p + strlen(p);
        if (!e || e == p || (size_t)(e - p) >= cap)
            return -1;
        memcpy(parts[i], p, (size_t)(e - p));
        parts[i][e - p] = 0;
        p = i < 3 ? e + 1 : e;
    }
    return strchr(ref, '/') ? -1 : 0;
}

/* Work-pool thread: the look-up walks manifests/ under the store lock, which
 * a manifest write or blob commit of another thread may hold for a while. */
static int find_manifest(node_t *node, const char *ns, const char *model, const char *tag,
                         char **json, size_t *len, char hex[65])
{
    char s[600];
    snprintf(s, sizeof s, "%s/%s:%s", ns, model, tag);
    cas_name_t n;
    if (cas_name_parse(s, &n) != 0)
        return OX_EINVAL;
    if (cas_manifest_read(node->cas, &n, json, len, hex, NULL, NULL) == 0)
        return 0;
    /* Not under the default registry: any host that has ns/model:tag (a
     * model pulled from another registry, or named after this host). */
    cas_model_info_t *v = NULL;
    size_t cnt = 0;
    int rc = OX_ENOTFOUND;
    if (cas_model_list(node->cas, &v, &cnt) == 0) {
        for (size_t i = 0; i < cnt && rc != 0; i++) {
            cas_name_t m = v[i].name;
            snprintf(m.host, sizeof m.host, "%s", n.host);
            if (cas_name_equal(&m, &n))
                rc = cas_manifest_read(node->cas, &v[i].name, json, len, hex, NULL, NULL);
        }
        free(v);
    }
    return rc;
}

/* The request parts travel in the job's body and the answer in its resp
 * ({"json": manifest bytes, "hex": sha256}), which the job frees; status
 * carries a look-up failure (400 or 404). */
static void run_manifest(api_job_t *job)
{
    const char *ns = json_string_value(json_object_get(job->body, "ns"));
    const char *model = json_string_value(json_object_get(job->body, "model"));
    const char *tag = json_string_value(json_object_get(job->body, "tag"));
    char *json = NULL, hex[65];
    size_t len = 0;
    int rc = find_manifest(job->node, ns, model, tag, &json, &len, hex);
    if (rc != 0) {
        job->status = rc == OX_EINVAL ? 400 : 404;
        return;
    }
    job->resp = json_object();
    json_object_set_new(job->resp, "json", json_stringn_nocheck(json, len));
    json_object_set_new(job->resp, "hex", json_string(hex));
    free(json);
    if (!json_is_string(json_object_get(job->resp, "json")))
        job->status = 500;
}

static void done_manifest(api_job_t *job)
{
    http_req_t *req = job->req;
    json_t *m = json_object_get(job->resp, "json");
    const char *hex = json_string_value(json_object_get(job->resp, "hex"));
    if (job->status == 400) {
        registry_error(req, 400, "NAME_INVALID", "invalid repository name");
        return;
    }
    if (job->status == 404) {
        registry_error(req, 404, "MANIFEST_UNKNOWN", "manifest unknown");
        return;
    }
    if (job->status || !m || !hex) {
        registry_error(req, 500, "UNKNOWN", job->err[0] ? job->err : "cannot read the manifest");
        return;
    }
    char dig[80];
    snprintf(dig, sizeof dig, "sha256:%s", hex);
    http_resp_header(req, "Docker-Content-Digest", dig);
    http_resp_header(req, "Docker-Distribution-API-Version", "registry/2.0");
    if (job->node->id[0])
        http_resp_header(req, "X-Ollamax-Node", job->node->id);
    http_respond(req, 200, CT_MANIFEST, json_string_value(m), json_string_length(m));
}

static void serve_manifest(node_t *node, http_req_t *req, const char *ns, const char *model,
                           const char *tag)
{
    char s[600];
    cas_name_t n;
    snprintf(s, sizeof s, "%s/%s:%s", ns, model, tag);
    if (cas_name_parse(s, &n) != 0) { /* pure: no need to leave the loop */
        registry_error(req, 400, "NAME_INVALID", "invalid repository name");
        return;
    }
    json_t *body = json_pack("{s:s, s:s, s:s}", "ns", ns, "model", model, "tag", tag);
    if (!body) {
        registry_error(req, 500, "UNKNOWN", "out of memory");
        return;
    }
    api_job_submit(node, req, body, run_manifest, done_manifest, NULL);
}

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against size.
 * Returns 0 with [*off, *off+*len) when satisfiable, -1 when unsatisfiable
 * (416), 1 when the header is to be ignored and the whole blob sent: a
 * malformed value or several ranges (pullers only ever ask for one). */
static int parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (strncmp(h, "bytes=", 6) != 0)
        return 1;
    h += 6;
    if (strchr(h, ','))
        return 1;
    char *end;
    if (*h == '-') {
        errno = 0;
        unsigned long long n = strtoull(h + 1, &end, 10);
        if (errno || end == h + 1 || *end)
            return 1;
        if (n == 0 || size == 0)
            return -1;
        if (n > size)
            n = size;
        *off = size - n;
        *len = n;
        return 0;
    }
    errno = 0;
    unsigned long long a = strtoull(h, &end, 10);
    if (errno || end == h || *end != '-')
        return 1;
    const char *b = end + 1;
    unsigned long long last = size ? size - 1 : 0;
    if (*b) {
        last = strtoull(b, &end, 10);
        if (errno || *end)
            return 1;
        if (last < a)
            return 1;
        if (size && last > size - 1)
            last = size - 1;
    }
    if (a >= size)
        return -1;
    *off = a;
    *len = last - a + 1;
    return 0;
}

static void serve_blob(node_t *node, http_req_t *req, const char *digest)
{
    char canon[72], path[4096], dig[80];
    if (cas_digest_parse(digest, canon) != 0) {
        registry_error(req, 400, "DIGEST_INVALID", "invalid digest");
        return;
    }
    uint64_t size = 0;
    if (cas_blob_stat(node->cas, canon, &size) != 0 ||
        cas_blob_path(node->cas, canon, path, sizeof path) != 0) {
        registry_error(req, 404, "BLOB_UNKNOWN", "blob unknown to registry");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        registry_error(req, 404, "BLOB_UNKNOWN", "blob unknown to registry");
        return;
    }
    size = (uint64_t)st.st_size;
    snprintf(dig, sizeof dig, "%s", canon);
    http_resp_header(req, "Docker-Content-Digest", dig);
    http_resp_header(req, "Accept-Ranges", "bytes");
    http_resp_header(req, "Location", http_req_raw_path(req));
    const char *ct = "application/octet-stream";
    uint64_t off = 0, len = size;
    int status = 200;
    const char *range = http_req_header(req, "Range");
    if (range) {
        int r = parse_range(range, size, &off, &len);
        char cr[96];
        if (r < 0) {
            close(fd);
            snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
            http_resp_header(req, "Content-Range", cr);
            static const char m[] = "invalid range: failed to overlap";
            http_respond(req, 416, "text/plain; charset=utf-8", m, sizeof m - 1);
            return;
        }
        if (r == 0) {
            status = 206;
            snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off, off + len - 1,
                     size);
            http_resp_header(req, "Content-Range", cr);
        } else {
            off = 0, len = size;
        }
    }
    if (http_req_is_head(req)) {
        close(fd);
        http_respond_head(req, status, ct, len);
        return;
    }
    http_respond_file(req, status, ct, fd, off, len);
}

int api_registry_route(node_t *node, http_req_t *req)
{
    const char *p = http_req_path(req);
    if (strcmp(p, "/v2/") == 0 || strcmp(p, "/v2") == 0) {
        http_resp_header(req, "Docker-Distribution-API-Version", "registry/2.0");
        http_respond(req, 200, "application/json; charset=utf-8", "{}", 2);
        return 1;
    }
    char ns[128], model[128], kind[128], ref[128];
    if (split_path(p + 4, ns, model, kind, ref, sizeof ns) != 0)
        return 0;
    if (strcmp(kind, "manifests") == 0) {
        serve_manifest(node, req, ns, model, ref);
        return 1;
    }
    if (strcmp(kind, "blobs") == 0) {
        serve_blob(node, req, ref);
        return 1;
    }
    return 0;
}
