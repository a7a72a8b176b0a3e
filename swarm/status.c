/* GET /api/swarm/status: a snapshot of the swarm as JSON. */
#include <jansson.h>
#include <stdlib.h>

#include "common/sha256.h"
#include "swarm/swarm_int.h"

static const char *tor_state_name(const swarm_tor_t *t)
{
    if (t->fetch)
        return swarm__fetch_state_name(t->fetch->state);
    switch (t->state) {
    case TOR_PREPARING: return "hashing";
    case TOR_ADDING: return "adding";
    case TOR_REMOVING: return "removing";
    default: return t->st.checking ? "checking" : t->st.seeding ? "seeding" : "active";
    }
}

static json_t *tor_json(const swarm_tor_t *t)
{
    char ih[65];
    ox_hex_encode(t->ih, 32, ih);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:I}",
                          "digest", t->digest, "info_hash", t->state == TOR_PREPARING ? "" : ih,
                          "role", t->role == TOR_FETCH ? "fetch" : "seed", "state",
                          tor_state_name(t),
                          "size", (json_int_t)t->st.size, "done", (json_int_t)t->st.done,
                          "uploaded", (json_int_t)t->st.uploaded, "downloaded",
                          (json_int_t)t->st.downloaded, "up_rate", (json_int_t)t->st.up_rate,
                          "down_rate", (json_int_t)t->st.down_rate, "peers", t->st.peers, "seeds",
                          t->st.seeds, "hash_failures", (json_int_t)t->hash_failures);
    /* a fetch's torrent that went on as the seed (fetch.c) */
    if (o)
        json_object_set_new(o, "from_fetch", json_boolean(t->adopted));
    return o;
}

char *swarm__status_json(swarm_t *s)
{
    json_t *tors = json_array(), *peers = json_array(), *banned = json_array();
    uint64_t up = s->retired_up, down = s->retired_down, up_rate = 0, down_rate = 0;
    for (swarm_tor_t *t = s->tors; t; t = t->next) {
        json_array_append_new(tors, tor_json(t));
        up += t->st.uploaded;
        down += t->st.downloaded;
        up_rate += t->st.up_rate;
        down_rate += t->st.down_rate;
    }
    /* the session counts every byte as it passes; the sum over torrents is
     * what an engine without them offers */
    if (s->have_totals) {
        up = s->total_up > up ? s->total_up : up;
        down = s->total_down > down ? s->total_down : down;
    }
    for (size_t i = 0; i < s->n_peers; i++)
        json_array_append_new(peers, json_string(s->peers[i]));
    for (size_t i = 0; i < s->n_banned; i++)
        json_array_append_new(banned, json_string(s->banned[i]));
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:i, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:o}",
        "state", s->closing ? "closing" : "running", "engine", s->ops->name, "bind",
        s->cfg.bind_ip, "listen_port", s->listen_port, "peers", peers, "bytes_up",
        (json_int_t)up, "bytes_down", (json_int_t)down, "up_rate", (json_int_t)up_rate,
        "down_rate", (json_int_t)down_rate, "hash_failures", (json_int_t)s->hash_failures,
        "banned", banned, "max_upload", (json_int_t)s->cfg.max_upload, "max_download",
        (json_int_t)s->cfg.max_download, "tap_bytes",
        (json_int_t)(s->hub ? swarm__hub_bytes_fed(s->hub) : 0), "thread_violations",
        (json_int_t)s->thread_violations, "torrents", tors);
    if (!o)
        return NULL;
    /* striping (stripe.c): shares completed with the holders then blocked,
     * and blocks lifted because the fetch stalled */
    json_object_set_new(o, "stripe_blocks", json_integer((json_int_t)s->stripe_blocks));
    json_object_set_new(o, "stripe_stalls", json_integer((json_int_t)s->stripe_stalls));
    json_object_set_new(o, "stripe_focus", json_integer((json_int_t)s->stripe_focus));
    json_object_set_new(o, "stripe_rescued", json_integer((json_int_t)s->stripe_rescued));
    /* seeds taken out because the store removed their blob (forget.c) */
    json_object_set_new(o, "forgotten", json_integer((json_int_t)s->forgotten));
    /* bytes of fetched blobs hashed during their download (behind.c) */
    json_object_set_new(o, "hashed_behind", json_integer((json_int_t)s->hashed_behind));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}
