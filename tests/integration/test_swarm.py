"""Pulls through the swarm between real daemons on 127.0.0.x."""
import json
import os
import signal
import subprocess
import threading
import time

from fake_registry import Registry
from harness import (BIN, Daemon, big_gguf, create_model, on_cleanup, run_tests, sha256_file, tempdir,
                     wait_for)

SIZE = 24 << 20


def swarm_status(d):
    r = d.req("GET", "/api/swarm/status")
    assert r.status == 200, r
    return r.json()


def torrent_of(st, digest):
    for t in st.get("torrents", []):
        if t.get("digest") == digest:
            return t
    return None


def seeded_pair(cap="6M"):
    """Origin A with a model of one big blob, B holding it too (pulled from A)."""
    a = Daemon("127.0.0.2", env={"OLLAMAX_MAX_UPLOAD": cap}).start()
    g = big_gguf(os.path.join(tempdir(), "big.gguf"), SIZE)
    digest = create_model(a, "big:v1", g)
    b = Daemon("127.0.0.3", env={"OLLAMAX_MAX_UPLOAD": cap, "OLLAMAX_PEERS": a.addr}).start()
    r = b.api("POST", "/api/pull", {"model": "%s/library/big:v1" % a.addr, "insecure": True, "stream": False},
              timeout=300)
    assert r.status == 200, r
    return a, b, digest


def pull_lines(d, name, timeout=300):
    r = d.api("POST", "/api/pull", {"model": name, "insecure": True}, timeout=timeout)
    assert r.status == 200, r
    lines = r.lines()
    assert lines[-1] == {"status": "success"}, lines[-3:]
    return lines


def test_pull_from_two_seeders():
    a, b, digest = seeded_pair()
    up_a0 = swarm_status(a)["bytes_up"]
    up_b0 = swarm_status(b)["bytes_up"]
    c = Daemon("127.0.0.4", env={"OLLAMAX_PEERS": "%s,%s" % (a.addr, b.addr)}).start()
    lines = pull_lines(c, "%s/library/big:v1" % a.addr)
    prog = [l for l in lines if l.get("digest") == digest]
    assert len(prog) >= 2, lines
    assert all(l["status"] == "pulling " + digest[7:19] and l["total"] == SIZE for l in prog)
    assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
    up_a = swarm_status(a)["bytes_up"] - up_a0
    up_b = swarm_status(b)["bytes_up"] - up_b0
    assert up_a > (1 << 20) and up_b > (1 << 20), (up_a, up_b)
    # the puller now seeds it too, with the very torrent that fetched it
    t = torrent_of(swarm_status(c), digest)
    assert t and t["role"] == "seed", t
    assert t["from_fetch"] is True, t
    assert "swarm from" in c.log() or "through the swarm" in c.log(), c.log()


def test_holder_found_by_the_swarm():
    """C knows only A, yet B, which holds the blob too, sends part of it: the
    swarm finds B by itself (B announced it on the private DHT that A
    bootstraps, and A's peer exchange names it). A's upload is capped so
    that B has time to be found."""
    a, b, digest = seeded_pair(cap="2M")
    up_b0 = swarm_status(b)["bytes_up"]
    c = Daemon("127.0.0.4", env={"OLLAMAX_PEERS": a.addr}).start()
    pull_lines(c, "%s/library/big:v1" % a.addr)
    assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
    up_b = swarm_status(b)["bytes_up"] - up_b0
    assert up_b > (1 << 20), up_b
    print("B, found without being named, sent %d of %d bytes" % (up_b, SIZE))


def test_rate_caps_hold():
    """OLLAMAX_MAX_UPLOAD on the holder, then OLLAMAX_MAX_DOWNLOAD on the
    puller: the blob cannot come faster than the cap (a lower bound on time,
    which a slow machine only makes easier), and it comes through the swarm."""
    cap = 4_000_000
    a = Daemon("127.0.0.2", env={"OLLAMAX_MAX_UPLOAD": str(cap)}).start()
    g = big_gguf(os.path.join(tempdir(), "cap.gguf"), SIZE, seed=17)
    digest = create_model(a, "cap:v1", g)
    name = "%s/library/cap:v1" % a.addr
    for who, env, holder in (("upload", {}, a), ("download", {"OLLAMAX_MAX_DOWNLOAD": "4M"}, None)):
        if holder is None:  # an uncapped holder this time
            holder = Daemon("127.0.0.5").start()
            create_model(holder, "cap:v1", g)
            name = "%s/library/cap:v1" % holder.addr
        c = Daemon("127.0.0.4", env=dict(env, OLLAMAX_PEERS=holder.addr)).start()
        t0 = time.time()
        lines = pull_lines(c, name)
        took = time.time() - t0
        # progress as pieces come (more often than the engine's 500 ms status
        # period), never going back
        done = [l.get("completed", 0) for l in lines if l.get("digest") == digest]
        assert done == sorted(done) and done[-1] == SIZE, done
        assert len(done) > took / 0.5 + 2, (len(done), took)
        assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
        assert swarm_status(c)["bytes_down"] >= SIZE, swarm_status(c)
        # the engine lets a burst of a second or so through
        assert took > 0.7 * SIZE / cap, (who, took)
        print("%s cap %d B/s: %d bytes in %.1f s" % (who, cap, SIZE, took))
        c.stop()


def test_deleted_model_stops_seeding():
    a, b, digest = seeded_pair()
    assert torrent_of(swarm_status(b), digest), swarm_status(b)
    r = b.api("DELETE", "/api/delete", {"model": "%s/library/big:v1" % a.addr})
    assert r.status == 200, r
    # the blob left B's store: B no longer offers it to the swarm
    wait_for(lambda: torrent_of(swarm_status(b), digest) is None, timeout=20,
             what="the deleted blob's torrent to leave the swarm")
    st = swarm_status(b)
    assert st["forgotten"] == 2 and st["torrents"] == [], st  # the layer and the config
    assert b.req("GET", "/api/swarm/torrents/" + digest).status == 404
    assert torrent_of(swarm_status(a), digest), "A still holds and seeds it"


def test_corrupt_seeder_is_banned():
    small = 8 << 20
    a = Daemon("127.0.0.2", env={"OLLAMAX_MAX_UPLOAD": "1M"}).start()
    g = big_gguf(os.path.join(tempdir(), "c.gguf"), small, seed=3)
    digest = create_model(a, "c:v1", g)
    name = "%s/library/c:v1" % a.addr
    b = Daemon("127.0.0.3", env={"OLLAMAX_PEERS": a.addr}).start()
    pull_lines(b, name)
    # C1 takes most pieces from B (A is slow), so B has checked them once
    c1 = Daemon("127.0.0.4", env={"OLLAMAX_PEERS": b.addr}).start()
    pull_lines(c1, name)
    c1.stop()
    # now B's copy goes bad behind its back: B keeps serving what it checked
    path = os.path.join(b.models, "blobs", "sha256-" + digest[7:])
    with open(path, "r+b") as f:
        for off in range(small // 4, small, small // 8):
            f.seek(off)
            chunk = f.read(4096)
            f.seek(off)
            f.write(bytes(x ^ 0xFF for x in chunk))
    c2 = Daemon("127.0.0.5", env={"OLLAMAX_PEERS": b.addr}).start()
    pull_lines(c2, name)
    assert sha256_file(os.path.join(c2.models, "blobs", "sha256-" + digest[7:])) == digest
    sc, sb = swarm_status(c2), swarm_status(b)
    # the bad data was caught by the receiver's piece checks and B banned
    assert sc["hash_failures"] > 0, (sc, sb)
    assert any(p.startswith(b.ip + ":") for p in sc["banned"]), sc
    print("receiver hash failures %d, banned %s; seeder hash failures %d" %
          (sc["hash_failures"], sc["banned"], sb["hash_failures"]))


def test_puller_killed_resumes():
    a, b, digest = seeded_pair(cap="3M")
    c = Daemon("127.0.0.4", env={"OLLAMAX_PEERS": "%s,%s" % (a.addr, b.addr)}).start()
    name = "%s/library/big:v1" % a.addr
    t = threading.Thread(target=lambda: c.api("POST", "/api/pull", {"model": name, "insecure": True},
                                               timeout=300), daemon=True)
    t.start()

    def progress():
        try:
            tt = torrent_of(swarm_status(c), digest)
            return tt and tt["done"] > SIZE // 4
        except Exception:
            return False
    wait_for(progress, timeout=120, what="a quarter of the blob")
    c.kill(signal.SIGKILL)
    t.join(10)
    assert ("sha256-" + digest[7:]) not in c.blob_files()
    c.start()
    lines = pull_lines(c, name)
    assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
    # The resumed fetch starts from the staged data verified before the kill
    # (more than SIZE // 4; a little may not have reached the disk): its first
    # progress line shows it, while a restart from zero would show what one
    # progress period (500 ms) can bring. Not the byte counters: the engine's
    # all-time download count is carried over in the resume data, so after a
    # restart it may include bytes fetched before the kill.
    prog = [l["completed"] for l in lines if l.get("digest") == digest and "completed" in l]
    assert prog, lines
    down = swarm_status(c)["bytes_down"]
    print("resumed from %d of %d bytes, %d bytes down after the restart" % (prog[0], SIZE, down))
    assert prog[0] >= SIZE // 5, "resumed fetch started at %d of %d bytes" % (prog[0], SIZE)


def test_seeder_killed_midway():
    a, b, digest = seeded_pair(cap="3M")
    c = Daemon("127.0.0.4", env={"OLLAMAX_PEERS": "%s,%s" % (a.addr, b.addr)}).start()
    name = "%s/library/big:v1" % a.addr
    res = {}
    t = threading.Thread(target=lambda: res.setdefault("r", c.api(
        "POST", "/api/pull", {"model": name, "insecure": True, "stream": False}, timeout=300)), daemon=True)
    t.start()

    def progress():
        try:
            tt = torrent_of(swarm_status(c), digest)
            return tt and tt["done"] > SIZE // 5
        except Exception:
            return False
    wait_for(progress, timeout=120, what="a fifth of the blob")
    http_a0 = swarm_status(a)["http_bytes_up"]
    b.kill(signal.SIGKILL)
    t.join(240)
    assert "r" in res and res["r"].status == 200, res
    assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
    # the rest came from A through the swarm, not by the registry fallback
    # (A's /v2 served the small config blob only)
    assert swarm_status(a)["http_bytes_up"] - http_a0 < (1 << 20), swarm_status(a)
    assert "using the registry" not in c.log(), c.log()


def test_manifest_from_peer():
    """A name of the default registry that a peer holds comes from that peer:
    the manifest from its /v2 (a dead peer listed first is skipped), the big
    blob through the swarm, the small ones from its /v2. There is no registry
    here: any request to it would fail the pull."""
    a = Daemon("127.0.0.2").start()
    g = big_gguf(os.path.join(tempdir(), "p.gguf"), 4 << 20, seed=11)
    digest = create_model(a, "peerm:v1", g)
    c = Daemon("127.0.0.4", env={"OLLAMAX_REGISTRY": "http://127.0.0.9:9"})  # no registry
    c.env["OLLAMAX_PEERS"] = "127.0.0.9:9,%s,%s" % (c.addr, a.addr)  # dead, self, holder
    c.start()
    lines = pull_lines(c, "peerm:v1")
    assert lines[0] == {"status": "pulling manifest"}, lines[:2]
    rel = os.path.join("manifests", "registry.ollama.ai", "library", "peerm", "v1")
    with open(os.path.join(a.models, rel), "rb") as fa, open(os.path.join(c.models, rel), "rb") as fc:
        assert fa.read() == fc.read()
    assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
    assert swarm_status(c)["bytes_down"] >= 4 << 20, swarm_status(c)
    assert "manifest of peerm:v1 from peer %s" % a.addr in c.log(), c.log()
    assert c.api("POST", "/api/show", {"model": "peerm:v1"}).status == 200


def test_manifest_not_from_this_node():
    """One OLLAMAX_PEERS list shared by every node names this node too, under
    an address it does not listen on by name (it listens on all of them): a
    re-pull must not take this node's own, older copy of the tag for a
    peer's."""
    a = Daemon("127.0.0.2").start()
    create_model(a, "again:v1", big_gguf(os.path.join(tempdir(), "new.gguf"), 2 << 20, seed=21))
    # the tag is here already, so the registry is asked first; there is none
    c = Daemon("0.0.0.0", env={"OLLAMAX_REGISTRY": "http://127.0.0.9:9"})
    c.env["OLLAMAX_PEERS"] = "127.0.0.1:%d,%s" % (c.port, a.addr)
    c.start()
    create_model(c, "again:v1", big_gguf(os.path.join(tempdir(), "old.gguf"), 2 << 20, seed=22))
    pull_lines(c, "again:v1")
    assert "registry could not give again:v1" in c.log(), c.log()
    rel = os.path.join("manifests", "registry.ollama.ai", "library", "again", "v1")
    with open(os.path.join(a.models, rel), "rb") as fa, open(os.path.join(c.models, rel), "rb") as fc:
        assert fa.read() == fc.read()
    assert "manifest of again:v1 from peer %s" % a.addr in c.log(), c.log()


def test_busy_holder_is_asked_again():
    """A holder whose blob arrived behind its back (files copied in, as when
    an Ollama store is adopted) answers 503 while it hashes it for its
    torrent; the puller asks again instead of going to the registry."""
    import shutil
    x = Daemon("127.0.0.5").start()
    g = big_gguf(os.path.join(tempdir(), "busy.gguf"), 8 << 20, seed=13)
    digest = create_model(x, "busy:v1", g)
    x.stop()
    a = Daemon("127.0.0.2").start()
    for sub in ("blobs", "manifests"):
        shutil.copytree(os.path.join(x.models, sub), os.path.join(a.models, sub), dirs_exist_ok=True)
    c = Daemon("127.0.0.4", env={"OLLAMAX_PEERS": a.addr}).start()
    pull_lines(c, "%s/library/busy:v1" % a.addr)
    assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
    assert swarm_status(c)["bytes_down"] >= 8 << 20, swarm_status(c)
    assert "using the registry" not in c.log(), c.log()


def test_repull_asks_the_registry_first():
    """A tag held here is being updated: the registry's manifest wins over a
    peer's older copy (a tag not held here comes from the peer)."""
    reg = Registry("127.0.0.5")
    on_cleanup(reg.close)
    new = os.urandom(2 << 20)
    reg.add_model("library", "upd", "latest", [("model", new)])
    a = Daemon("127.0.0.2").start()
    create_model(a, "upd", big_gguf(os.path.join(tempdir(), "peer.gguf"), 2 << 20, seed=23))
    env = {"OLLAMAX_REGISTRY": "http://" + reg.addr}
    c = Daemon("127.0.0.4", env=dict(env, OLLAMAX_PEERS=a.addr)).start()
    pull_lines(c, "upd")  # not here: from the peer
    rel = os.path.join("manifests", "registry.ollama.ai", "library", "upd", "latest")
    with open(os.path.join(a.models, rel), "rb") as fa, open(os.path.join(c.models, rel), "rb") as fc:
        assert fa.read() == fc.read()
    assert not any(p.endswith("/manifests/latest") for _, p, _ in reg.requests), reg.requests
    pull_lines(c, "upd")  # here: an update, from the registry
    digest = [d for d in reg.blobs if reg.blobs[d] == new][0]
    assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
    assert any(p.endswith("/manifests/latest") for _, p, _ in reg.requests), reg.requests


def test_client_gone_cancels_stalled_fetch():
    """Every holder dies, then the client goes: the pull's end cancels its
    swarm fetch at once, long before the fetch's own 30 s idle timeout."""
    import http.client
    a, b, digest = seeded_pair(cap="3M")
    c = Daemon("127.0.0.4", env={"OLLAMAX_PEERS": "%s,%s" % (a.addr, b.addr)}).start()
    name = "%s/library/big:v1" % a.addr
    conn = http.client.HTTPConnection(c.ip, c.port, timeout=60)
    conn.request("POST", "/api/pull", body=json.dumps({"model": name, "insecure": True}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.status

    def progress():
        tt = torrent_of(swarm_status(c), digest)
        return tt and tt["done"] > SIZE // 5
    wait_for(progress, timeout=120, what="a fifth of the blob")
    a.kill(signal.SIGKILL)
    b.kill(signal.SIGKILL)
    time.sleep(1.5)  # what was in flight lands; then no progress report can cancel it
    tt = torrent_of(swarm_status(c), digest)
    assert tt and tt["done"] < SIZE, tt
    resp.close()
    conn.close()
    t0 = time.time()
    wait_for(lambda: torrent_of(swarm_status(c), digest) is None, timeout=10,
             what="the fetch to leave the engine")
    print("fetch gone %.1f s after the client" % (time.time() - t0))
    assert ("sha256-" + digest[7:]) not in c.blob_files()


def test_no_holder_falls_back_to_registry():
    reg = Registry("127.0.0.5")
    on_cleanup(reg.close)
    data = os.urandom(3 << 20)
    reg.add_model("library", "reg", "latest", [("model", data)])
    other = Daemon("127.0.0.3").start()  # runs a swarm but holds nothing
    c = Daemon("127.0.0.4", env={"OLLAMAX_PEERS": other.addr}).start()
    pull_lines(c, "%s/library/reg" % reg.addr)
    digest = [d for d in reg.blobs if reg.blobs[d] == data][0]
    assert sha256_file(os.path.join(c.models, "blobs", "sha256-" + digest[7:])) == digest
    assert any(m == "GET" and p.endswith(digest) for m, p, _ in reg.requests), reg.requests
    r = c.req("GET", "/api/swarm/torrents/" + digest)
    assert r.status == 200 and r.header("X-Ollamax-Swarm"), r


def test_torrent_endpoint_and_status():
    a = Daemon("127.0.0.2").start()
    g = big_gguf(os.path.join(tempdir(), "small.gguf"), 1 << 20)
    digest = create_model(a, "small", g)
    r = a.req("GET", "/api/swarm/torrents/" + digest)
    assert r.status == 200 and r.body.startswith(b"d"), r
    assert r.header("X-Ollamax-Swarm").startswith("127.0.0.2:")
    # the same content gives the same torrent on another node
    b = Daemon("127.0.0.3").start()
    create_model(b, "small", g)
    assert b.req("GET", "/api/swarm/torrents/" + digest).body == r.body
    # a peer without the blob says so, with its swarm endpoint: a puller that
    # probes every peer learns who may fetch it at the same time (striping)
    r404 = a.req("GET", "/api/swarm/torrents/sha256:" + "0" * 64)
    assert r404.status == 404, r404
    assert r404.header("X-Ollamax-Swarm") == r.header("X-Ollamax-Swarm"), r404
    assert a.req("GET", "/api/swarm/torrents/nope").status == 400
    st = swarm_status(a)
    for k in ("bytes_up", "bytes_down", "peers", "torrents", "http_bytes_up"):
        assert k in st, st
    t = torrent_of(st, digest)
    assert t and t["role"] == "seed", st
    # blob bytes served over HTTP (a rescue's ranged GET, a registry pull) are counted too
    before = st["http_bytes_up"]
    rg = a.req("GET", "/v2/library/small/blobs/" + digest, headers={"Range": "bytes=1000-4999"})
    assert rg.status == 206 and len(rg.body) == 4000, rg
    assert swarm_status(a)["http_bytes_up"] == before + 4000
    out = a.cli("swarm", "status").stdout.decode()
    assert digest in out


def test_bench_transfer_smoke():
    p = subprocess.run([BIN, "bench", "transfer", "--peers", "2", "--size", "32M"], capture_output=True,
                       timeout=600)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    j = json.loads(out.strip().splitlines()[-1])
    assert j["bench"] == "transfer" and j["peers"] == 2 and j["size"] == 32 << 20
    for phase in ("swarm", "http"):
        ph = j[phase]
        assert len(ph["times_s"]) == 2 and all(t > 0 for t in ph["times_s"]), ph
        assert ph["last_s"] == max(ph["times_s"])
        assert ph["aggregate_mbps"] > 0 and ph["origin_sent_bytes"] > 0 and ph["cpu_s_per_gb"] >= 0
    assert 1.99 < j["http"]["origin_copies"] < 2.2, j  # measured on the origin
    assert 0 < j["swarm"]["origin_copies"] <= 2.5
    assert j["http_over_swarm"] > 0


if __name__ == "__main__":
    run_tests(globals())
