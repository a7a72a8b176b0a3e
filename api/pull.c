/* POST /api/pull: the request, the manifest, registry auth, and the final
 * manifest write. The blob downloads are in pull_blob.c. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/pull_int.h"
#include "common/err.h"
#include "common/log.h"
#include "swarm/swarm.h"

#define MANIFEST_MAX (4u * 1024 * 1024)
#define TOKEN_MAX (64u * 1024)
#define MANIFEST_ACCEPT "Accept: application/vnd.docker.distribution.manifest.v2+json"

uint64_t pull_part_min(void)
{
    /* Tests shrink parts so that small blobs still download in several
     * ranged parts. */
    const char *s = getenv("OLLAMAX_PULL_PART_MIN");
    if (s && *s) {
        unsigned long long v = strtoull(s, NULL, 10);
        if (v > 0 && v <= PULL_PART_MAX)
            return v;
    }
    return PULL_PART_MIN;
}

void pull_ref(pull_t *pl) { pl->refs++; }

static void pull_free(pull_t *pl)
{
    node_t *node = pl->node;
    ox_buf_free(&pl->body);
    free(pl->manifest);
    free(pl->token);
    if (pl->have_mf)
        cas_manifest_free(&pl->mf);
    free(pl->blobs);
    free(pl->parts);
    free(pl->xfers);
    free(pl);
    api_release(node);
}

void pull_unref(pull_t *pl)
{
    if (--pl->refs == 0)
        pull_free(pl);
}

static void on_handle_closed(uv_handle_t *h) { pull_unref(h->data); }
static void on_curluv_closed(void *ud) { pull_unref(ud); }

void pull_line(pull_t *pl, json_t *obj)
{
    if (!pl->finished && pl->stream && pl->req)
        api_ndjson_line(pl->req, obj);
    else
        json_decref(obj);
}

static void status_line(pull_t *pl, const char *status)
{
    pull_line(pl, json_pack("{s:s}", "status", status));
}

void pull_progress_line(pull_t *pl, uint64_t total, uint64_t completed)
{
    const cas_layer_t *b = &pl->blobs[pl->cur];
    char st[32];
    snprintf(st, sizeof(st), "pulling %.12s", b->digest + 7);
    json_t *o = json_pack("{s:s,s:s,s:I}", "status", st, "digest", b->digest, "total",
                          (json_int_t)total);
    if (o && completed > 0)
        json_object_set_new(o, "completed", json_integer((json_int_t)completed));
    pull_line(pl, o);
}

/* Answers the request (if still open), stops everything and drops the
 * pull's own reference; partial files stay for a later resume. */
static void pull_end(pull_t *pl, int status, const char *err)
{
    if (pl->finished)
        return;
    pl->finished = 1;
    if (pl->req) {
        if (pl->stream) {
            if (err) {
                /* not json_pack: err may hold registry bytes that are not
                 * UTF-8, and a NULL line would end the stream silently */
                json_t *o = json_object();
                json_object_set_new(o, "error", json_stringn_nocheck(err, strlen(err)));
                api_ndjson_line(pl->req, o);
            }
            else
                api_ndjson_line(pl->req, json_pack("{s:s}", "status", "success"));
            api_ndjson_end(pl->req);
        } else if (err) {
            api_error(pl->req, status, err);
        } else {
            api_json(pl->req, 200, json_pack("{s:s}", "status", "success"));
        }
        pl->req = NULL;
    }
    pull_blob_release(pl);
    /* a swarm fetch would otherwise run on for a client that is gone; its
     * done callback still runs once (and drops its pull_ref) */
    if (pl->swarm_fetch)
        swarm_fetch_cancel(pl->swarm_fetch);
    uv_timer_stop(&pl->tick);
    uv_timer_stop(&pl->wait);
    uv_close((uv_handle_t *)&pl->tick, on_handle_closed);
    uv_close((uv_handle_t *)&pl->wait, on_handle_closed);
    curluv_close(pl->cu, on_curluv_closed, pl);
    pl->cu = NULL;
    pull_unref(pl);
}

void pull_fail(pull_t *pl, const char *fmt, ...)
{
    if (pl->finished)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    OX_WARN("pull %s/%s/%s:%s: %s", pl->name.host, pl->name.ns, pl->name.model, pl->name.tag,
            msg);
    pull_end(pl, 500, msg);
}

const char *const *pull_headers(pull_t *pl, int send_token, const char *extra)
{
    static _Thread_local char auth[4200];
    static _Thread_local const char *list[4];
    size_t n = 0;
    list[n++] = "User-Agent: ollamax/" OX_VERSION;
    if (send_token && pl->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", pl->token);
        list[n++] = auth;
    }
    if (extra)
        list[n++] = extra;
    list[n] = NULL;
    return list;
}

static int on_body_data(curluv_req_t *r, const void *p, size_t n, void *ud)
{
    (void)r;
    pull_t *pl = ud;
    if (pl->body.len + n > MANIFEST_MAX)
        return OX_ETOOBIG;
    return ox_buf_append(&pl->body, p, n);
}

/* ---- auth ---------------------------------------------------------------- */

typedef struct auth_ctx {
    pull_t *pl;
    void (*then)(pull_t *pl);
} auth_ctx_t;

static int on_token_data(curluv_req_t *r, const void *p, size_t n, void *ud)
{
    auth_ctx_t *ac = ud;
    return on_body_data(r, p, n, ac->pl);
}

static void on_token_done(curluv_req_t *r, int result, void *ud)
{
    auth_ctx_t *ac = ud;
    pull_t *pl = ac->pl;
    void (*then)(pull_t *) = ac->then;
    free(ac);
    if (pl->finished)
        return;
    long st = curluv_req_status(r);
    if (result != 0 || st != 200) {
        pull_fail(pl, "authenticate: %s", result ? curluv_req_error(r) : "token request refused");
        return;
    }
    json_error_t je;
    json_t *o = json_loadb(pl->body.data ? pl->body.data : "", pl->body.len, 0, &je);
    const char *tok = json_string_value(json_object_get(o, "token"));
    if (!tok || !*tok)
        tok = json_string_value(json_object_get(o, "access_token"));
    if (!tok || !*tok) {
        json_decref(o);
        pull_fail(pl, "authenticate: no token in the response");
        return;
    }
    free(pl->token);
    pl->token = strdup(tok);
    json_decref(o);
    if (!pl->token) {
        pull_fail(pl, "%s", ox_strerror(OX_ENOMEM));
        return;
    }
    then(pl);
}

int pull_auth_start(pull_t *pl, curluv_req_t *r, void (*then)(pull_t *pl))
{
    const char *hdr = curluv_req_header(r, "WWW-Authenticate");
    pull_auth_t a;
    char url[2048];
    if (pl->auth_tried || !hdr || pull_www_auth_parse(hdr, &a) != 0 ||
        pull_token_url(&a, url, sizeof(url)) != 0)
        return OX_EINVAL;
    pl->auth_tried = 1;
    auth_ctx_t *ac = calloc(1, sizeof(*ac));
    if (!ac)
        return OX_ENOMEM;
    ac->pl = pl;
    ac->then = then;
    ox_buf_reset(&pl->body);
    curluv_opts_t o = {.url = url,
                       .headers = pull_headers(pl, 0, NULL),
                       .follow_redirects = 1,
                       .timeout_ms = 60000,
                       .on_data = on_token_data,
                       .on_done = on_token_done,
                       .ud = ac};
    int rc = curluv_start(pl->cu, &o, NULL);
    if (rc)
        free(ac);
    return rc;
}

/* ---- manifest -------------------------------------------------------------- */

static void fetch_manifest(pull_t *pl);

/* Peers first: a model another peer holds comes from it, manifest and all
 * (its blobs through the swarm, the small ones from its /v2), and the
 * registry is asked only when no peer has the tag. Only for names of the
 * default registry, which a peer's /v2 serves by ns/model:tag alone; never
 * ourselves (a re-pull must not find its own copy). A tag this node holds
 * already is being updated: the registry first then, and the peers only
 * when it cannot answer (unreachable, or a model made inside the cluster).
 * The look-up is one small file read on the loop. */
static void manifest_peers_init(pull_t *pl)
{
    if (strcasecmp(pl->name.host, CAS_DEFAULT_HOST) != 0)
        return;
    char *json = NULL;
    size_t len;
    if (cas_manifest_read(pl->node->cas, &pl->name, &json, &len, NULL, NULL, NULL) == 0)
        pl->mf_reg_first = 1;
    free(json);
    char all[32][360];
    size_t n = pull_peer_apis(pl->node, all, 0, 32);
    char self[300];
    snprintf(self, sizeof self, "%s:%d",
             pl->node->cfg.host[0] ? pl->node->cfg.host : "127.0.0.1", pl->node->cfg.port);
    for (size_t i = 0; i < n && pl->n_mf_peers < 8; i++)
        if (strcasecmp(all[i], self) != 0)
            memcpy(pl->mf_peers[pl->n_mf_peers++], all[i], sizeof all[i]);
}

/* Whether the manifest request in flight (or next) goes to a peer. */
static int manifest_from_peer(const pull_t *pl)
{
    return pl->mf_try < pl->n_mf_peers && (!pl->mf_reg_first || pl->mf_reg_done);
}

/* A peer that could not give the manifest: the next one, then the registry
 * (or, when the registry was asked first, its answer). */
static void manifest_next_source(pull_t *pl, const char *why)
{
    OX_DEBUG("pull: manifest not from peer %s: %s", pl->mf_peers[pl->mf_try], why);
    pl->mf_try++;
    if (pl->mf_try >= pl->n_mf_peers && pl->mf_reg_first) {
        pull_fail(pl, "%s", pl->mf_err);
        return;
    }
    fetch_manifest(pl);
}

/* The registry, asked first for a tag held here, did not give it: the error
 * it would end the pull with is kept, and the peers are asked. */
static int manifest_registry_failed(pull_t *pl, curluv_req_t *r, int result, long st)
{
    if (!pl->mf_reg_first || pl->mf_reg_done || !pl->n_mf_peers || (result == 0 && st == 200) ||
        (result == 0 && st == 401 && !pl->auth_tried))
        return 0;
    if (result == OX_ETOOBIG)
        snprintf(pl->mf_err, sizeof pl->mf_err,
                 "pull model manifest: manifest larger than %u bytes", MANIFEST_MAX);
    else if (result != 0)
        snprintf(pl->mf_err, sizeof pl->mf_err, "pull model manifest: %s",
                 *curluv_req_error(r) ? curluv_req_error(r) : ox_strerror(result));
    else if (st == 404)
        snprintf(pl->mf_err, sizeof pl->mf_err, "pull model manifest: file does not exist");
    else
        snprintf(pl->mf_err, sizeof pl->mf_err, "pull model manifest: %ld %s", st,
                 http_status_text((int)st));
    OX_INFO("pull: registry could not give %s:%s (%s), asking the peers", pl->name.model,
            pl->name.tag, pl->mf_err);
    pl->mf_reg_done = 1;
    fetch_manifest(pl);
    return 1;
}

static void on_manifest_done(curluv_req_t *r, int result, void *ud)
{
    pull_t *pl = ud;
    if (pl->finished)
        return;
    long st = curluv_req_status(r);
    if (manifest_from_peer(pl)) {
        char err[256];
        cas_manifest_t mf;
        if (result != 0 || st != 200) {
            snprintf(err, sizeof err, "%s", result ? ox_strerror(result) : http_status_text((int)st));
            manifest_next_source(pl, err);
            return;
        }
        const char *nid = curluv_req_header(r, "X-Ollamax-Node");
        if (nid && *nid && strcmp(nid, pl->node->id) == 0) {
            manifest_next_source(pl, "this node");
            return;
        }
        if (cas_manifest_parse(pl->body.data, pl->body.len, &mf, err, sizeof err) != 0) {
            manifest_next_source(pl, err);
            return;
        }
        cas_manifest_free(&mf);
        /* the blobs the swarm does not bring come from this peer's /v2 */
        if (snprintf(pl->base, sizeof pl->base, "http://%s/v2/%s/%s/", pl->mf_peers[pl->mf_try],
                     pl->name.ns, pl->name.model) >= (int)sizeof pl->base) {
            manifest_next_source(pl, "name too long");
            return;
        }
        OX_INFO("pull: manifest of %s:%s from peer %s", pl->name.model, pl->name.tag,
                pl->mf_peers[pl->mf_try]);
        pl->mf_try = pl->n_mf_peers;
        pl->mf_reg_first = 0;
    } else if (manifest_registry_failed(pl, r, result, st)) {
        return;
    }
    if (result == OX_ETOOBIG) {
        /* on_body_data refused it: curl's own text ("Failure writing
         * output") would hide why */
        pull_fail(pl, "pull model manifest: manifest larger than %u bytes", MANIFEST_MAX);
        return;
    }
    if (result != 0) {
        pull_fail(pl, "pull model manifest: %s",
                  *curluv_req_error(r) ? curluv_req_error(r) : ox_strerror(result));
        return;
    }
    if (st == 401) {
        if (pull_auth_start(pl, r, fetch_manifest) != 0)
            pull_fail(pl, "pull model manifest: 401 Unauthorized");
        return;
    }
    if (st == 404) {
        pull_fail(pl, "pull model manifest: file does not exist");
        return;
    }
    if (st != 200) {
        pull_fail(pl, "pull model manifest: %ld %s", st, http_status_text((int)st));
        return;
    }
    char err[256];
    pl->auth_tried = 0;  /* blobs may need a token of their own */
    pl->manifest_len = pl->body.len;
    pl->manifest = ox_buf_steal(&pl->body);
    if (!pl->manifest) {
        pull_fail(pl, "%s", ox_strerror(OX_ENOMEM));
        return;
    }
    if (cas_manifest_parse(pl->manifest, pl->manifest_len, &pl->mf, err, sizeof(err)) != 0) {
        pull_fail(pl, "pull model manifest: %s", err);
        return;
    }
    pl->have_mf = 1;
    pl->n_blobs = pl->mf.n_layers + 1;
    pl->blobs = calloc(pl->n_blobs, sizeof(*pl->blobs));
    if (!pl->blobs) {
        pull_fail(pl, "%s", ox_strerror(OX_ENOMEM));
        return;
    }
    for (size_t i = 0; i < pl->mf.n_layers; i++)
        pl->blobs[i] = pl->mf.layers[i];
    pl->blobs[pl->mf.n_layers] = pl->mf.config;
    pl->cur = 0;
    pull_blob_start(pl);
}

static void fetch_manifest(pull_t *pl)
{
    char url[1400];
    int peer = manifest_from_peer(pl);
    if (peer)
        snprintf(url, sizeof(url), "http://%s/v2/%s/%s/manifests/%s", pl->mf_peers[pl->mf_try],
                 pl->name.ns, pl->name.model, pl->name.tag);
    else
        snprintf(url, sizeof(url), "%smanifests/%s", pl->base, pl->name.tag);
    ox_buf_reset(&pl->body);
    curluv_opts_t o = {.url = url,
                       .headers = pull_headers(pl, !peer, MANIFEST_ACCEPT),
                       .follow_redirects = !peer,
                       .connect_timeout_ms = peer ? 2000 : 0,
                       .timeout_ms = peer ? 10000 : 120000,
                       .on_data = on_body_data,
                       .on_done = on_manifest_done,
                       .ud = pl};
    int rc = curluv_start(pl->cu, &o, NULL);
    if (rc)
        pull_fail(pl, "pull model manifest: %s", ox_strerror(rc));
}

/* ---- writing the manifest -------------------------------------------------- */

typedef struct write_job {
    uv_work_t work;
    pull_t *pl;
    cas_t *cas;
    int rc;
    int removed;
    char err[512];
} write_job_t;

static void on_write_work(uv_work_t *w)
{
    write_job_t *j = w->data;
    pull_t *pl = j->pl;
    j->rc = cas_manifest_write(j->cas, &pl->name, pl->manifest, pl->manifest_len, &j->removed,
                               j->err, sizeof(j->err));
}

static void on_write_done(uv_work_t *w, int status)
{
    write_job_t *j = w->data;
    pull_t *pl = j->pl;
    if (!pl->finished) {
        if (status != 0 || j->rc != 0) {
            pull_fail(pl, "writing manifest: %s", j->err[0] ? j->err : ox_strerror(j->rc));
        } else {
            if (j->removed)
                status_line(pl, "removing unused layers");
            pull_end(pl, 200, NULL);
        }
    }
    free(j);
    pull_unref(pl);
}

void pull_next_blob(pull_t *pl)
{
    if (pl->finished)
        return;
    pl->cur++;
    if (pl->cur < pl->n_blobs) {
        pull_blob_start(pl);
        return;
    }
    status_line(pl, "verifying sha256 digest");
    status_line(pl, "writing manifest");
    write_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        pull_fail(pl, "%s", ox_strerror(OX_ENOMEM));
        return;
    }
    j->pl = pl;
    j->cas = pl->node->cas;
    j->work.data = j;
    pull_ref(pl);
    if (uv_queue_work(pl->node->loop, &j->work, on_write_work, on_write_done) != 0) {
        free(j);
        pull_unref(pl);
        pull_fail(pl, "writing manifest: cannot queue work");
    }
}

/* ---- the route ------------------------------------------------------------- */

static void on_client_gone(http_req_t *r, void *ud)
{
    (void)r;
    pull_t *pl = ud;
    if (!pl->finished)
        pull_fail(pl, "%s", ox_strerror(OX_ECANCELED));
}

void api_route_pull(node_t *node, http_req_t *req)
{
    json_t *body = NULL;
    if (api_body_json(req, &body) != 0)
        return;
    const char *model = json_string_value(json_object_get(body, "model"));
    if (!model || !*model)
        model = json_string_value(json_object_get(body, "name"));
    cas_name_t name;
    if (!model || cas_name_parse(model, &name) != 0) {
        json_decref(body);
        api_error(req, 400, "invalid model name");
        return;
    }
    pull_t *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        json_decref(body);
        api_error(req, 500, ox_strerror(OX_ENOMEM));
        return;
    }
    pl->node = node;
    pl->req = req;
    pl->name = name;
    pl->fd = -1;
    pl->stream = api_want_stream(body);
    pl->insecure = json_is_true(json_object_get(body, "insecure"));
    json_decref(body);
    pl->refs = 1 + 3;  /* ourselves + tick, wait, curluv */
    api_hold(node);
    if (curluv_new(node->loop, &pl->cu) != 0) {
        free(pl);
        api_release(node);
        api_error(req, 500, "cannot start the HTTP client");
        return;
    }
    uv_timer_init(node->loop, &pl->tick);
    uv_timer_init(node->loop, &pl->wait);
    pl->tick.data = pl;
    pl->wait.data = pl;
    http_req_on_close(req, on_client_gone, pl);
    int based;
    if (strcasecmp(pl->name.host, CAS_DEFAULT_HOST) == 0 && node->cfg.registry[0])
        based = snprintf(pl->base, sizeof pl->base, "%s/v2/%s/%s/", node->cfg.registry,
                         pl->name.ns, pl->name.model) < (int)sizeof pl->base ? 0 : OX_ETOOBIG;
    else
        based = pull_base_url(&pl->name, pl->insecure, pl->base, sizeof(pl->base));
    if (based != 0) {
        pull_fail(pl, "invalid model name");
        return;
    }
    if (pl->stream && api_ndjson_begin(req) != 0) {
        pull_fail(pl, "%s", ox_strerror(OX_ECANCELED));
        return;
    }
    status_line(pl, "pulling manifest");
    manifest_peers_init(pl);
    fetch_manifest(pl);
}
