"""Registry pulls: between two daemons, from a registry, killed with -9 and resumed."""
import hashlib
import json
import os
import signal
import threading
import time

from fake_registry import Registry
from harness import Daemon, create_model, mkgguf, on_cleanup, run_tests, sha256_file, tempdir, wait_for


def test_pull_between_two_daemons():
    a = Daemon("127.0.0.2").start()
    b = Daemon("127.0.0.3").start()
    g = mkgguf(os.path.join(tempdir(), "tiny.gguf"), "--seed", 5)
    create_model(a, "shared:v1", g, system="sys")
    name = "%s/library/shared:v1" % a.addr
    r = b.api("POST", "/api/pull", {"model": name, "insecure": True})
    assert r.status == 200, r
    lines = r.lines()
    assert lines[0] == {"status": "pulling manifest"}, lines[:2]
    assert lines[-1] == {"status": "success"}, lines[-3:]
    sts = [l["status"] for l in lines]
    assert "verifying sha256 digest" in sts and "writing manifest" in sts, sts
    for l in lines:
        if l["status"].startswith("pulling ") and l["status"] != "pulling manifest":
            assert l["status"] == "pulling " + l["digest"][7:19], l
            assert l["total"] > 0
            assert l.get("completed", 0) <= l["total"]
            assert "completed" not in l or l["completed"] > 0, l
    ma = open(os.path.join(a.models, "manifests", "registry.ollama.ai", "library", "shared", "v1"), "rb").read()
    mb = open(os.path.join(b.models, "manifests", a.ip + ":" + str(a.port), "library", "shared", "v1"), "rb").read()
    assert ma == mb
    assert a.blob_files() == b.blob_files()
    for blob in b.blob_files():
        assert sha256_file(os.path.join(b.models, "blobs", blob)) == blob.replace("-", ":", 1)
    # pulling again: every blob already present, one line each with total == completed
    r = b.api("POST", "/api/pull", {"name": name, "insecure": True})
    for l in r.lines():
        if "digest" in l:
            assert l["total"] == l["completed"], l
    # CLI pull of the same model on a third daemon, non-streamed API form too
    c = Daemon("127.0.0.4").start()
    c.cli("pull", name, "--insecure")
    assert c.blob_files() == a.blob_files()
    r = c.api("POST", "/api/pull", {"model": name, "insecure": True, "stream": False})
    assert r.status == 200 and r.json() == {"status": "success"}, r


def test_pull_unknown_model():
    a = Daemon("127.0.0.2").start()
    b = Daemon("127.0.0.3").start()
    r = b.api("POST", "/api/pull", {"model": "%s/library/nothing:here" % a.addr, "insecure": True})
    lines = r.lines()
    assert lines[0] == {"status": "pulling manifest"}, lines
    assert lines[-1] == {"error": "pull model manifest: file does not exist"}, lines
    r = b.api("POST", "/api/pull", {"model": "%s/library/nothing:here" % a.addr, "insecure": True, "stream": False})
    assert r.status == 500 and r.json() == {"error": "pull model manifest: file does not exist"}, r
    assert b.manifest_files() == [] and b.blob_files() == []


def test_pull_kill9_resumes():
    reg = Registry("127.0.0.5", rate=4 << 20)
    on_cleanup(reg.close)
    big = os.urandom(24 << 20)
    reg.add_model("library", "big", "latest", [("model", big), ("system", b"hi")])
    d = Daemon("127.0.0.3").start()
    name = "%s/library/big" % reg.addr
    result = {}

    def pull():
        try:
            result["r"] = d.api("POST", "/api/pull", {"model": name, "insecure": True}, timeout=120)
        except Exception as e:
            result["e"] = e

    t = threading.Thread(target=pull, daemon=True)
    t.start()
    tmp = os.path.join(d.home, "tmp")
    bd = "sha256:" + hashlib.sha256(big).hexdigest()

    def partial_bytes():
        n = 0
        if os.path.isdir(tmp):
            for fn in os.listdir(tmp):
                if fn.startswith("sha256-" + bd[7:]) and "partial" in fn:
                    n = max(n, os.path.getsize(os.path.join(tmp, fn)))
        return n
    wait_for(lambda: partial_bytes() > (6 << 20), timeout=60, what="partial download")
    d.kill(signal.SIGKILL)
    t.join(10)
    # nothing half-written is visible as a blob
    assert ("sha256-" + bd[7:]) not in d.blob_files()
    reg.requests.clear()
    reg.rate = None
    d.start()
    r = d.api("POST", "/api/pull", {"model": name, "insecure": True, "stream": False}, timeout=120)
    assert r.status == 200 and r.json() == {"status": "success"}, r
    assert ("sha256-" + bd[7:]) in d.blob_files()
    assert sha256_file(os.path.join(d.models, "blobs", "sha256-" + bd[7:])) == bd
    ranges = [rg for (m, p, rg) in reg.requests if m == "GET" and "/blobs/" in p and p.endswith(bd)]
    assert ranges, reg.requests
    # the resumed pull fetched less than the whole blob again
    fetched = 0
    for rg in ranges:
        assert rg, ranges  # a resumed pull asks for ranges, never the whole blob again
        a, b_ = rg.split("=")[1].split("-")
        fetched += (int(b_) if b_ else len(big) - 1) - int(a) + 1
    assert fetched < len(big), (fetched, ranges)
    man = json.loads(open(os.path.join(d.models, "manifests", reg.addr, "library", "big", "latest"), "rb").read())
    assert man["layers"][0]["digest"] == bd
    # the manifest is byte-exact as served
    assert open(os.path.join(d.models, "manifests", reg.addr, "library", "big", "latest"), "rb").read() == \
        reg.manifests[("library", "big", "latest")]


def test_upload_kill9_leaves_no_blob():
    import socket
    d = Daemon("127.0.0.2").start()
    data = os.urandom(32 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    s = socket.create_connection((d.ip, d.port))
    s.sendall(("POST /api/blobs/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" %
               (digest, d.addr, len(data))).encode())
    s.sendall(data[: len(data) // 2])
    time.sleep(0.5)
    d.kill(signal.SIGKILL)
    s.close()
    assert d.blob_files() == []
    d.start()
    assert d.req("HEAD", "/api/blobs/" + digest).status == 404
    assert d.blob_files() == []
    # a full upload afterwards works and the leftovers of the killed one are gone
    r = d.req("POST", "/api/blobs/" + digest, body=data)
    assert r.status == 201, r
    assert d.req("HEAD", "/api/blobs/" + digest).status == 200
    tmp = os.path.join(d.home, "tmp")
    left = [f for f in os.listdir(tmp) if not os.path.isdir(os.path.join(tmp, f))] if os.path.isdir(tmp) else []
    assert left == [], left


if __name__ == "__main__":
    run_tests(globals())
