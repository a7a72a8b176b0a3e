// lt_shim: libtorrent 2.0 behind the engine table of engine.h. Translation
// only: every decision (what to seed, where to save, when to verify) is made
// by swarm.c. No exception leaves this file.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/address.hpp>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/ip_filter.hpp>
#include <libtorrent/read_resume_data.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/session_params.hpp>
#include <libtorrent/session_stats.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_info.hpp>
#include <libtorrent/torrent_status.hpp>
#include <libtorrent/write_resume_data.hpp>

extern "C" {
#include "common/err.h"
#include "swarm/engine.h"
}

namespace {

struct lt_eng {
    std::unique_ptr<lt::session> ses;
    std::vector<lt::alert *> alerts;
    lt::peer_class_t throttle{0};
    bool has_throttle = false;
    int sent_idx = -1, recv_idx = -1; // session counters of TOTALS
    lt::peer_class_info throttle_info; // kept: reading it back waits on the engine
    // The handles of added torrents by info-hash, so that no call made on the
    // loop waits for the engine's thread (session::find_torrent does).
    // Loop thread only.
    std::map<std::string, lt::torrent_handle> handles;
};

std::string ih_key(const uint8_t ih[32])
{
    return std::string(reinterpret_cast<const char *>(ih), 32);
}

// Every address in the global class (rate caps apply to LAN and loopback
// peers too: libtorrent exempts local networks by default), the listed ones
// in the throttled class as well.
lt::ip_filter class_filter(const lt_eng *e, const char *const *ips, size_t n)
{
    std::uint32_t const global =
        1u << static_cast<std::uint32_t>(lt::session::global_peer_class_id);
    lt::ip_filter f;
    f.add_rule(lt::make_address("0.0.0.0"), lt::make_address("255.255.255.255"), global);
    f.add_rule(lt::make_address("::"), lt::make_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
               global);
    for (size_t i = 0; e->has_throttle && i < n; i++) {
        lt::error_code ec;
        auto addr = lt::make_address(ips[i], ec);
        if (!ec)
            f.add_rule(addr, addr, global | (1u << static_cast<std::uint32_t>(e->throttle)));
    }
    return f;
}

void put_err(char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        std::snprintf(err, errlen, "%s", what);
}

lt::sha1_hash short_hash(const uint8_t ih[32])
{
    // a v2 torrent is found by its info-hash truncated to 20 bytes
    return lt::sha1_hash(reinterpret_cast<const char *>(ih));
}

void ih_copy(const lt::info_hash_t &h, uint8_t out[32])
{
    std::memcpy(out, h.v2.data(), 32);
}

// Experiments only: OX_LT_TUNE="name=value,..." overrides integer and bool
// settings by libtorrent's own names (read once per session start).
void tune_from_env(lt::settings_pack &p)
{
    const char *e = std::getenv("OX_LT_TUNE");
    if (!e || !*e)
        return;
    std::string all(e);
    size_t at = 0;
    while (at < all.size()) {
        size_t end = all.find(',', at);
        if (end == std::string::npos)
            end = all.size();
        std::string kv = all.substr(at, end - at);
        at = end + 1;
        size_t eq = kv.find('=');
        if (eq == std::string::npos)
            continue;
        int name = lt::setting_by_name(kv.substr(0, eq));
        if (name < 0)
            continue;
        int v = std::atoi(kv.c_str() + eq + 1);
        if ((name & lt::settings_pack::type_mask) == lt::settings_pack::bool_type_base)
            p.set_bool(name, v != 0);
        else if ((name & lt::settings_pack::type_mask) == lt::settings_pack::int_type_base)
            p.set_int(name, v);
    }
}

lt::settings_pack make_settings(const swarm_engine_cfg_t *cfg)
{
    namespace sp = lt;
    lt::settings_pack p;
    std::string ip = cfg->bind_ip && *cfg->bind_ip ? cfg->bind_ip : "0.0.0.0";
    // an IPv6 address goes in brackets before its port ("[::1]:6881")
    std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
    p.set_str(sp::settings_pack::listen_interfaces, host + ":" + std::to_string(cfg->port));
    if (cfg->bind_ip && *cfg->bind_ip && std::strcmp(cfg->bind_ip, "0.0.0.0") != 0)
        p.set_str(sp::settings_pack::outgoing_interfaces, ip);
    p.set_str(sp::settings_pack::user_agent, "ollamax/" OX_VERSION);
    p.set_int(sp::settings_pack::alert_mask,
              lt::alert_category::status | lt::alert_category::error |
                  lt::alert_category::storage | lt::alert_category::peer |
                  lt::alert_category::piece_progress);
    // a piece_finished per piece (4096 for 1 GiB) must not crowd out an
    // add, finish or remove between two drains: a lost one costs a handle
    p.set_int(sp::settings_pack::alert_queue_size, 1 << 16);
    // measured in spec/engines.md: uTP off is 30x faster on loopback
    p.set_bool(sp::settings_pack::enable_outgoing_utp, false);
    p.set_bool(sp::settings_pack::enable_incoming_utp, false);
    p.set_int(sp::settings_pack::send_buffer_watermark, 8 << 20);
    p.set_int(sp::settings_pack::send_buffer_low_watermark, 1 << 20);
    p.set_int(sp::settings_pack::send_buffer_watermark_factor, 150);
    p.set_int(sp::settings_pack::max_queued_disk_bytes, 32 << 20);
    // request_queue_time 1 s (default 3) and at most 64 blocks (1 MiB) in
    // flight per peer: on shaped links a deep queue makes receivers draw
    // pieces from the origin beyond their stripe and pile requests on one
    // slow peer (spec/engines.md: 8 blocks there); 64 still filled loopback
    // (1 GiB in 5.5 s against 5.0 s with 1500, inside the noise of a loaded
    // machine) and 1 Gbit/s at 1 ms round trips
    p.set_int(sp::settings_pack::max_out_request_queue, 64);
    p.set_int(sp::settings_pack::request_queue_time, 1);
    p.set_int(sp::settings_pack::max_allowed_in_request_queue, 4000);
    p.set_int(sp::settings_pack::send_socket_buffer_size, 4 << 20);
    p.set_int(sp::settings_pack::recv_socket_buffer_size, 4 << 20);
    p.set_int(sp::settings_pack::aio_threads, 1);
    p.set_int(sp::settings_pack::hashing_threads, 1);
    p.set_int(sp::settings_pack::tick_interval, 100);
    // every peer unchoked: with the default 8 slots, one of them optimistic,
    // the origin of an 8-receiver fan-out choked one receiver for seconds at
    // a time (its own share starved: 1 of 64 pieces after 9 s)
    p.set_int(sp::settings_pack::unchoke_slots_limit, -1);
    // fan-out on shaped links (spec/engines.md): receivers must not fetch the
    // same pieces from the origin: no runs of whole pieces, no random start
    p.set_int(sp::settings_pack::whole_pieces_threshold, 0);
    p.set_int(sp::settings_pack::initial_picker_threshold, 0);
    p.set_int(sp::settings_pack::suggest_mode, sp::settings_pack::no_piece_suggestions);
    p.set_bool(sp::settings_pack::piece_extent_affinity, false);
    p.set_int(sp::settings_pack::predictive_piece_announce, 0);
    tune_from_env(p);
    // peers that send bad data are put on parole, then banned
    p.set_bool(sp::settings_pack::use_parole_mode, true);
    p.set_bool(sp::settings_pack::disable_hash_checks, false);
    p.set_bool(sp::settings_pack::allow_multiple_connections_per_ip, true);
    // a private DHT: no public routers, cluster peers are added as nodes
    p.set_bool(sp::settings_pack::enable_dht, cfg->dht != 0);
    p.set_str(sp::settings_pack::dht_bootstrap_nodes, "");
    p.set_bool(sp::settings_pack::dht_restrict_routing_ips, false);
    p.set_bool(sp::settings_pack::dht_restrict_search_ips, false);
    p.set_bool(sp::settings_pack::enable_lsd, false);
    p.set_bool(sp::settings_pack::enable_upnp, false);
    p.set_bool(sp::settings_pack::enable_natpmp, false);
    p.set_int(sp::settings_pack::upload_rate_limit, (int)std::min<uint64_t>(cfg->max_upload, INT32_MAX));
    p.set_int(sp::settings_pack::download_rate_limit,
              (int)std::min<uint64_t>(cfg->max_download, INT32_MAX));
    return p;
}

void on_notify_none() {}

int eng_open(const swarm_engine_cfg_t *cfg, void (*notify)(void *), void *ud, void **out,
             char *err, size_t errlen)
{
    try {
        auto e = std::make_unique<lt_eng>();
        lt::session_params params(make_settings(cfg));
        e->ses = std::make_unique<lt::session>(std::move(params));
        e->sent_idx = lt::find_metric_idx("net.sent_payload_bytes");
        e->recv_idx = lt::find_metric_idx("net.recv_payload_bytes");
        e->throttle = e->ses->create_peer_class("ox-throttle");
        // the filter holds 32 classes
        e->has_throttle = static_cast<std::uint32_t>(e->throttle) < 32;
        if (e->has_throttle)
            e->throttle_info = e->ses->get_peer_class(e->throttle);
        e->ses->set_peer_class_filter(class_filter(e.get(), nullptr, 0));
        // the callback can fire at once: the caller has its wake-up ready
        e->ses->set_alert_notify([notify, ud] { notify(ud); });
        *out = e.release();
        return 0;
    } catch (const std::exception &ex) {
        put_err(err, errlen, ex.what());
        return OX_ENET;
    }
}

void *eng_shutdown(void *p)
{
    auto *e = static_cast<lt_eng *>(p);
    lt::session_proxy *proxy = nullptr;
    try {
        e->ses->set_alert_notify(on_notify_none);
        proxy = new lt::session_proxy(e->ses->abort());
    } catch (...) {
    }
    // the session object itself returns at once once aborted; the proxy
    // holds the threads until reaped
    e->ses.reset();
    delete e;
    return proxy;
}

void eng_reap(void *token)
{
    delete static_cast<lt::session_proxy *>(token);
}

int eng_inspect(const void *torrent, size_t len, uint8_t ih[32], char *name, size_t namecap,
                uint64_t *size, char *err, size_t errlen)
{
    try {
        lt::error_code ec;
        lt::torrent_info ti(lt::span<char const>(static_cast<const char *>(torrent), (long)len), ec,
                            lt::from_span);
        if (ec) {
            put_err(err, errlen, ec.message().c_str());
            return OX_EFORMAT;
        }
        // libtorrent appends a virtual tail pad file to v2 torrents
        int real_files = 0;
        for (auto i : ti.files().file_range())
            real_files += !(ti.files().file_flags(i) & lt::file_storage::flag_pad_file);
        if (!ti.info_hashes().has_v2() || ti.info_hashes().has_v1() || real_files != 1) {
            put_err(err, errlen, "not a single-file v2-only torrent");
            return OX_EFORMAT;
        }
        ih_copy(ti.info_hashes(), ih);
        if (name)
            std::snprintf(name, namecap, "%s", ti.files().file_name(lt::file_index_t(0)).to_string().c_str());
        if (size)
            *size = (uint64_t)ti.files().file_size(lt::file_index_t(0));
        return 0;
    } catch (const std::exception &ex) {
        put_err(err, errlen, ex.what());
        return OX_EFORMAT;
    }
}

int eng_add(void *p, const swarm_add_t *a, char *err, size_t errlen)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        lt::error_code ec;
        lt::add_torrent_params atp;
        if (a->resume && a->rlen) {
            atp = lt::read_resume_data(
                lt::span<char const>(static_cast<const char *>(a->resume), (long)a->rlen), ec);
            if (ec)
                atp = lt::add_torrent_params(); // unusable: start over with a check
        }
        auto ti = std::make_shared<lt::torrent_info>(
            lt::span<char const>(static_cast<const char *>(a->torrent), (long)a->len), ec,
            lt::from_span);
        if (ec) {
            put_err(err, errlen, ec.message().c_str());
            return OX_EFORMAT;
        }
        atp.ti = ti;
        atp.info_hashes = ti->info_hashes();
        atp.save_path = a->save_path;
        atp.flags &= ~(lt::torrent_flags::paused | lt::torrent_flags::auto_managed);
        if ((a->flags & SWARM_ADD_SEED) && !(a->flags & SWARM_ADD_VERIFY)) {
            // The store already checked the whole-file sha256: every piece is
            // declared present (libtorrent still checks the file's size) and
            // the whole tree is handed over, so that hash requests from
            // downloaders are answered. Not seed_mode: a seed without block
            // hashes corrupted the heap in 2.0.8 once a downloader hit hash
            // failures from another peer (test_corrupt_seeder, 1 run in 3).
            atp.have_pieces.resize(ti->num_pieces(), true);
            if (a->tree && a->n_tree) {
                atp.merkle_trees.resize(ti->num_files());
                auto &t = atp.merkle_trees[lt::file_index_t(0)];
                t.resize(a->n_tree);
                for (size_t i = 0; i < a->n_tree; i++)
                    t[(long)i] = lt::sha256_hash(reinterpret_cast<const char *>(a->tree + 32 * i));
            }
        }
        if (a->flags & SWARM_ADD_FRESH) // allocated, but not data to check
            atp.flags |= lt::torrent_flags::no_verify_files;
        if (a->flags & SWARM_ADD_INORDER)
            atp.flags |= lt::torrent_flags::sequential_download;
        if (a->prio && a->n_prio) {
            atp.piece_priorities.clear();
            for (size_t i = 0; i < a->n_prio; i++)
                atp.piece_priorities.push_back(
                    lt::download_priority_t(a->prio[i] > 7 ? 7 : a->prio[i]));
        } else if (a->stripe_count > 1 && a->stripe_index >= 0 &&
                   a->stripe_index < a->stripe_count) {
            // own share first; the rest low but wanted, so a fetcher left
            // alone still completes (swarm_stripe_prio)
            int np = ti->num_pieces();
            atp.piece_priorities.resize((size_t)np);
            for (int i = 0; i < np; i++)
                atp.piece_priorities[(size_t)i] = lt::download_priority_t(static_cast<std::uint8_t>(
                    swarm_stripe_prio(i, np, a->stripe_index, a->stripe_count)));
        }
        e->ses->async_add_torrent(std::move(atp));
        return 0;
    } catch (const std::exception &ex) {
        put_err(err, errlen, ex.what());
        return OX_EINVAL;
    }
}

lt::torrent_handle find(lt_eng *e, const uint8_t ih[32])
{
    auto it = e->handles.find(ih_key(ih));
    return it == e->handles.end() ? lt::torrent_handle() : it->second;
}

int eng_remove(void *p, const uint8_t ih[32])
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        auto h = find(e, ih);
        if (!h.is_valid())
            return OX_ENOTFOUND;
        e->ses->remove_torrent(h);
        return 0;
    } catch (...) {
        return OX_ESTATE;
    }
}

int eng_connect_peer(void *p, const uint8_t ih[32], const char *ip, int port)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        auto h = find(e, ih);
        if (!h.is_valid())
            return OX_ENOTFOUND;
        lt::error_code ec;
        auto addr = lt::make_address(ip, ec);
        if (ec || port <= 0 || port > 65535)
            return OX_EINVAL;
        h.connect_peer(lt::tcp::endpoint(addr, (unsigned short)port));
        return 0;
    } catch (...) {
        return OX_ENET;
    }
}

int eng_add_dht_node(void *p, const char *ip, int port)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        e->ses->add_dht_node({ip, port});
        return 0;
    } catch (...) {
        return OX_ENET;
    }
}

int eng_set_blocked(void *p, const char *const *ips, size_t n)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        lt::ip_filter f;
        for (size_t i = 0; i < n; i++) {
            lt::error_code ec;
            auto addr = lt::make_address(ips[i], ec);
            if (ec)
                return OX_EINVAL;
            f.add_rule(addr, addr, lt::ip_filter::blocked);
        }
        e->ses->set_ip_filter(std::move(f));
        return 0;
    } catch (...) {
        return OX_ENET;
    }
}

int eng_set_rates(void *p, uint64_t up, uint64_t down)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        lt::settings_pack sp;
        sp.set_int(lt::settings_pack::upload_rate_limit, (int)std::min<uint64_t>(up, INT32_MAX));
        sp.set_int(lt::settings_pack::download_rate_limit, (int)std::min<uint64_t>(down, INT32_MAX));
        e->ses->apply_settings(std::move(sp));
        return 0;
    } catch (...) {
        return OX_EINVAL;
    }
}

int eng_announce(void *p, const uint8_t ih[32])
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        auto h = find(e, ih);
        if (!h.is_valid())
            return OX_ENOTFOUND;
        h.force_dht_announce();
        return 0;
    } catch (...) {
        return OX_ESTATE;
    }
}

int eng_relocate(void *p, const uint8_t ih[32], const char *save_path)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        auto h = find(e, ih);
        if (!h.is_valid())
            return OX_ENOTFOUND;
        // libtorrent moves each file whose source exists and skips one that
        // is gone (storage_utils move_storage): the store already renamed
        // it, so this only changes where the torrent reads from, without a
        // recheck (that comes only with dont_replace)
        h.move_storage(save_path, lt::move_flags_t::always_replace_files);
        return 0;
    } catch (...) {
        return OX_ESTATE;
    }
}

int eng_set_throttled(void *p, const char *const *ips, size_t n)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        e->ses->set_peer_class_filter(class_filter(e, ips, n));
        return e->has_throttle ? 0 : OX_ESTATE;
    } catch (...) {
        return OX_ENET;
    }
}

int eng_set_throttle(void *p, uint64_t down)
{
    auto *e = static_cast<lt_eng *>(p);
    if (!e->has_throttle)
        return OX_ESTATE;
    try {
        e->throttle_info.download_limit = (int)std::min<uint64_t>(down, INT32_MAX);
        e->ses->set_peer_class(e->throttle, e->throttle_info);
        return 0;
    } catch (...) {
        return OX_ENET;
    }
}

int eng_post_updates(void *p)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        e->ses->post_torrent_updates(lt::status_flags_t{});
        e->ses->post_session_stats();
        return 0;
    } catch (...) {
        return OX_ESTATE;
    }
}

int eng_save_resume(void *p, const uint8_t ih[32])
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        auto h = find(e, ih);
        if (!h.is_valid())
            return OX_ENOTFOUND;
        h.save_resume_data(lt::torrent_handle::only_if_modified);
        return 0;
    } catch (...) {
        return OX_ESTATE;
    }
}

void fill_state(const lt::torrent_status &s, swarm_tstat_t *st)
{
    uint64_t size = 0;
    if (auto ti = s.torrent_file.lock())
        size = (uint64_t)ti->files().file_size(lt::file_index_t(0));
    st->size = size;
    // v2 totals count a virtual tail pad: clamp to the file
    st->done = (uint64_t)s.total_wanted_done;
    if (size && st->done > size)
        st->done = size;
    // all_time_* lag by up to a second; total_payload_* are current
    st->uploaded = (uint64_t)std::max(s.all_time_upload, s.total_payload_upload);
    st->downloaded = (uint64_t)std::max(s.all_time_download, s.total_payload_download);
    st->up_rate = (uint64_t)s.upload_payload_rate;
    st->down_rate = (uint64_t)s.download_payload_rate;
    st->peers = s.num_peers;
    st->seeds = s.num_seeds;
    st->seeding = s.state == lt::torrent_status::seeding || s.state == lt::torrent_status::finished;
    st->checking = s.state == lt::torrent_status::checking_files ||
                   s.state == lt::torrent_status::checking_resume_data;
}

void ep_str(const lt::tcp::endpoint &ep, char *out, size_t cap)
{
    std::snprintf(out, cap, "%s:%d", ep.address().to_string().c_str(), (int)ep.port());
}

void emit(lt_eng *e, const lt::alert *a, swarm_ev_cb cb, void *ud)
{
    swarm_ev_t ev;
    std::memset(&ev, 0, sizeof ev);
    if (auto *x = lt::alert_cast<lt::add_torrent_alert>(a)) {
        ih_copy(x->params.ti ? x->params.ti->info_hashes() : x->params.info_hashes, ev.ih);
        ev.type = x->error ? SWARM_EV_ADD_FAILED : SWARM_EV_ADDED;
        if (x->params.ti) {
            ev.piece = x->params.ti->num_pieces();
            ev.len = static_cast<size_t>(x->params.ti->piece_length());
            ev.st.size = static_cast<uint64_t>(x->params.ti->files().file_size(lt::file_index_t(0)));
        }
        if (x->error)
            std::snprintf(ev.msg, sizeof ev.msg, "%s", x->error.message().c_str());
        else
            e->handles[ih_key(ev.ih)] = x->handle;
    } else if (auto *x = lt::alert_cast<lt::torrent_finished_alert>(a)) {
        // no counts (st.size 0): status() would wait on the engine; the
        // next STATE brings them
        ev.type = SWARM_EV_FINISHED;
        ih_copy(x->handle.info_hashes(), ev.ih);
    } else if (auto *x = lt::alert_cast<lt::piece_finished_alert>(a)) {
        ev.type = SWARM_EV_PIECE;
        ih_copy(x->handle.info_hashes(), ev.ih);
        ev.piece = static_cast<int>(x->piece_index);
    } else if (auto *x = lt::alert_cast<lt::torrent_checked_alert>(a)) {
        ev.type = SWARM_EV_CHECKED;
        ih_copy(x->handle.info_hashes(), ev.ih);
    } else if (auto *x = lt::alert_cast<lt::torrent_removed_alert>(a)) {
        ev.type = SWARM_EV_REMOVED;
        ih_copy(x->info_hashes, ev.ih);
        e->handles.erase(ih_key(ev.ih));
    } else if (auto *x = lt::alert_cast<lt::hash_failed_alert>(a)) {
        ev.type = SWARM_EV_HASH_FAILED;
        ih_copy(x->handle.info_hashes(), ev.ih);
        ev.piece = static_cast<int>(x->piece_index);
    } else if (auto *x = lt::alert_cast<lt::peer_ban_alert>(a)) {
        ev.type = SWARM_EV_PEER_BANNED;
        ih_copy(x->handle.info_hashes(), ev.ih);
        ep_str(x->endpoint, ev.peer, sizeof ev.peer);
    } else if (auto *x = lt::alert_cast<lt::save_resume_data_alert>(a)) {
        ev.type = SWARM_EV_RESUME_DATA;
        ih_copy(x->handle.info_hashes(), ev.ih);
        std::vector<char> buf = lt::write_resume_data_buf(x->params);
        ev.data = buf.data();
        ev.len = buf.size();
        cb(ud, &ev);
        return;
    } else if (auto *x = lt::alert_cast<lt::state_update_alert>(a)) {
        for (const auto &s : x->status) {
            std::memset(&ev, 0, sizeof ev);
            ev.type = SWARM_EV_STATE;
            ih_copy(s.info_hashes, ev.ih);
            fill_state(s, &ev.st);
            cb(ud, &ev);
        }
        return;
    } else if (auto *x = lt::alert_cast<lt::session_stats_alert>(a)) {
        if (e->sent_idx < 0 || e->recv_idx < 0)
            return;
        auto c = x->counters();
        ev.type = SWARM_EV_TOTALS;
        ev.st.uploaded = static_cast<uint64_t>(c[e->sent_idx]);
        ev.st.downloaded = static_cast<uint64_t>(c[e->recv_idx]);
    } else if (auto *x = lt::alert_cast<lt::listen_succeeded_alert>(a)) {
        if (x->socket_type != lt::socket_type_t::tcp)
            return;
        ev.type = SWARM_EV_LISTEN;
        ev.port = x->port;
    } else if (auto *x = lt::alert_cast<lt::listen_failed_alert>(a)) {
        ev.type = SWARM_EV_LISTEN_FAILED;
        std::snprintf(ev.msg, sizeof ev.msg, "%s", x->message().c_str());
    } else if (auto *x = lt::alert_cast<lt::torrent_error_alert>(a)) {
        ev.type = SWARM_EV_ERROR;
        ih_copy(x->handle.info_hashes(), ev.ih);
        std::snprintf(ev.msg, sizeof ev.msg, "%s", x->message().c_str());
    } else if (auto *x = lt::alert_cast<lt::storage_moved_failed_alert>(a)) {
        ev.type = SWARM_EV_ERROR;
        ih_copy(x->handle.info_hashes(), ev.ih);
        std::snprintf(ev.msg, sizeof ev.msg, "%s", x->message().c_str());
    } else if (auto *x = lt::alert_cast<lt::file_error_alert>(a)) {
        ev.type = SWARM_EV_ERROR;
        ih_copy(x->handle.info_hashes(), ev.ih);
        std::snprintf(ev.msg, sizeof ev.msg, "%s", x->message().c_str());
    } else {
        return;
    }
    cb(ud, &ev);
}

void eng_poll(void *p, swarm_ev_cb cb, void *ud)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        e->ses->pop_alerts(&e->alerts);
    } catch (const std::exception &ex) {
        std::fprintf(stderr, "swarm: alert handling failed: %s\n", ex.what());
        return;
    }
    // per alert: one that throws (a handle gone meanwhile) must not drop
    // the rest of the batch, which may hold a REMOVED a fetch waits for
    for (const lt::alert *a : e->alerts) {
        try {
            emit(e, a, cb, ud);
        } catch (const std::exception &ex) {
            std::fprintf(stderr, "swarm: alert handling failed: %s\n", ex.what());
        } catch (...) {
            std::fprintf(stderr, "swarm: alert handling failed\n");
        }
    }
}

int eng_piece_avail(void *p, const uint8_t ih[32], int *avail, size_t n, int *seeds)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        // the work pool, not the loop: the session's own (waiting) look-up
        auto h = e->ses->find_torrent(short_hash(ih));
        if (!h.is_valid())
            return OX_ENOTFOUND;
        std::vector<int> v;
        h.piece_availability(v);
        *seeds = h.status(lt::status_flags_t{}).num_seeds;
        size_t k = std::min(n, v.size());
        for (size_t i = 0; i < k; i++)
            avail[i] = v[i];
        return static_cast<int>(k);
    } catch (...) {
        return OX_EIO;
    }
}

int eng_set_piece_prio(void *p, const uint8_t ih[32], const int *pieces, size_t n, int prio)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        auto h = find(e, ih);
        if (!h.is_valid())
            return OX_ENOTFOUND;
        std::vector<std::pair<lt::piece_index_t, lt::download_priority_t>> v;
        v.reserve(n);
        for (size_t i = 0; i < n; i++)
            v.emplace_back(lt::piece_index_t(pieces[i]),
                           lt::download_priority_t(static_cast<std::uint8_t>(prio)));
        h.prioritize_pieces(v);
        return 0;
    } catch (...) {
        return OX_EIO;
    }
}

int eng_add_piece(void *p, const uint8_t ih[32], int piece, const void *data, size_t len)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        auto h = find(e, ih);
        if (!h.is_valid())
            return OX_ENOTFOUND;
        if (piece < 0 || !len)
            return OX_EINVAL; // the size is the caller's to check: asking
                              // the torrent would block on its thread
        const char *c = static_cast<const char *>(data);
        // the vector overload returns at once; the pointer one waits for
        // the network thread
        h.add_piece(lt::piece_index_t(piece), std::vector<char>(c, c + len));
        return 0;
    } catch (const std::bad_alloc &) {
        return OX_ENOMEM;
    } catch (...) {
        return OX_EIO;
    }
}

int eng_listen_port(void *p)
{
    auto *e = static_cast<lt_eng *>(p);
    try {
        return e->ses->listen_port();
    } catch (...) {
        return 0;
    }
}

int eng_make_torrent(const char *path, uint64_t piece_len, void **out, size_t *len,
                     uint8_t ih[32])
{
    try {
        std::string full(path);
        std::string dir = full.substr(0, full.rfind('/'));
        lt::file_storage fs;
        lt::add_files(fs, full, lt::create_torrent::v2_only);
        lt::create_torrent ct(fs, (int)piece_len, lt::create_torrent::v2_only);
        lt::set_piece_hashes(ct, dir);
        std::vector<char> buf = ct.generate_buf();
        lt::torrent_info ti(buf, lt::from_span);
        ih_copy(ti.info_hashes(), ih);
        *out = std::malloc(buf.size());
        if (!*out)
            return OX_ENOMEM;
        std::memcpy(*out, buf.data(), buf.size());
        *len = buf.size();
        return 0;
    } catch (const std::exception &ex) {
        std::fprintf(stderr, "swarm: make_torrent: %s\n", ex.what());
        return OX_EIO;
    }
}

} // namespace

extern "C" const swarm_engine_ops_t swarm_engine_libtorrent = {
    "libtorrent-" LIBTORRENT_VERSION,
    SWARM_CAP_DHT | SWARM_CAP_RESUME | SWARM_CAP_TEST,
    eng_open,
    eng_shutdown,
    eng_reap,
    eng_inspect,
    eng_add,
    eng_remove,
    eng_connect_peer,
    eng_add_dht_node,
    eng_set_blocked,
    eng_set_rates,
    eng_announce,
    eng_post_updates,
    eng_save_resume,
    eng_poll,
    eng_listen_port,
    eng_make_torrent,
    eng_relocate,
    eng_set_throttled,
    eng_set_throttle,
    eng_piece_avail,
    eng_set_piece_prio,
    eng_add_piece,
};
