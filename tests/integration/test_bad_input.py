"""Hostile and malformed input: each gets a clear 4xx, the daemon keeps serving, the store is unchanged."""
import os
import socket
import struct

from harness import Daemon, create_model, mkgguf, run_tests, tempdir, upload_blob


def raw(d, data, read_timeout=10):
    s = socket.create_connection((d.ip, d.port), timeout=read_timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
        return out
    finally:
        s.close()


def status_of(resp):
    return int(resp.split(b" ", 2)[1])


def snapshot(d):
    return (d.blob_files(), d.manifest_files(), sorted(os.listdir(os.path.join(d.home, "tmp")))
            if os.path.isdir(os.path.join(d.home, "tmp")) else [])


def test_malformed_json_and_missing_body():
    d = Daemon("127.0.0.2").start()
    for path in ("/api/show", "/api/create", "/api/copy", "/api/pull", "/api/generate", "/api/chat"):
        r = d.req("POST", path, body=b"{not json")
        assert r.status == 400, (path, r)
        assert "error" in r.json(), (path, r)
        r = d.req("POST", path)
        assert r.status == 400 and r.json() == {"error": "missing request body"}, (path, r)
    r = d.req("DELETE", "/api/delete", body=b"[1,2")
    assert r.status == 400 and "error" in r.json(), r


def test_invalid_names_and_digests():
    d = Daemon("127.0.0.2").start()
    create_model(d, "src", mkgguf(os.path.join(tempdir(), "src.gguf"), "--seed", 8))
    before = snapshot(d)
    for bad in ("", "a//b", "bad name", "x:y:z", "../../etc/passwd", "-lead", "a" * 81, "m:" + "t" * 81):
        r = d.api("POST", "/api/show", {"model": bad})
        assert r.status in (400, 404), (bad, r)
        assert "error" in r.json()
        # the source exists, so only the destination's name can be refused
        r = d.api("POST", "/api/copy", {"source": "src", "destination": bad})
        assert r.status == 400 and r.json() == {"error": "invalid model name"}, (bad, r)
    r = d.api("POST", "/api/create", {"model": "../evil", "from": "x"})
    assert r.status == 400 and r.json() == {"error": "invalid model name"}, r
    for bad in ("sha256:1234", "md5:" + "0" * 64, "sha256:" + "g" * 64, "sha256-" + "0" * 63):
        r = d.req("HEAD", "/api/blobs/" + bad)
        assert r.status == 400, (bad, r)
        r = d.req("POST", "/api/blobs/" + bad, body=b"hello")
        assert r.status == 400 and r.json() == {"error": "invalid digest format"}, (bad, r)
    r = d.req("POST", "/api/blobs/sha256:" + "0" * 64, body=b"hello")
    assert r.status == 400, r
    assert r.json()["error"].startswith('digest mismatch, expected "sha256:' + "0" * 64 + '", got "sha256:'), r
    assert snapshot(d) == before
    assert d.req("GET", "/").status == 200


def test_oversized_header_and_body():
    d = Daemon("127.0.0.2").start()
    resp = raw(d, b"GET /api/tags HTTP/1.1\r\nHost: 127.0.0.2\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
    assert status_of(resp) == 431, resp[:200]
    resp = raw(d, b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.2\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000000000\r\n\r\n{\"model\":")
    assert status_of(resp) == 413, resp[:200]
    resp = raw(d, b"THIS IS NOT HTTP\r\n\r\n")
    assert 400 <= status_of(resp) < 500, resp[:200]
    resp = raw(d, b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) == 400, resp[:200]
    assert d.req("GET", "/api/tags").status == 200


def test_host_check_and_cors():
    d = Daemon("127.0.0.2").start()
    r = d.req("GET", "/api/tags", headers={"Host": "evil.example.com"})
    assert r.status == 403, r
    for ok in ("localhost:11434", "127.0.0.1", "foo.localhost", "box.local", "svc.internal", "10.1.2.3"):
        r = d.req("GET", "/api/tags", headers={"Host": ok})
        assert r.status == 200, (ok, r)
    r = d.req("OPTIONS", "/api/tags", headers={"Origin": "http://localhost:3000",
                                                "Access-Control-Request-Method": "POST"})
    assert r.status in (200, 204), r
    assert r.header("Access-Control-Allow-Origin") in ("http://localhost:3000", "*"), r.headers


def _gguf_bytes():
    p = mkgguf(os.path.join(tempdir(), "good.gguf"), "--seed", 9)
    return open(p, "rb").read()


def test_truncated_and_hostile_gguf():
    d = Daemon("127.0.0.2").start()
    good = _gguf_bytes()
    cases = {
        "truncated-header": good[:10],
        "truncated-middle": good[: len(good) // 2],
        "bad-magic": b"GGUX" + good[4:],
        "bad-version": good[:4] + struct.pack("<I", 99) + good[8:],
        "huge-counts": good[:8] + struct.pack("<QQ", 1 << 60, 1 << 60) + good[24:],
        "not-gguf": b"hello world, definitely not a model" * 10,
    }
    for name, data in cases.items():
        digest = upload_blob_bytes(d, data)
        before = snapshot(d)
        r = d.api("POST", "/api/create", {"model": "bad-" + name, "files": {"m.gguf": digest}, "stream": False})
        assert r.status == 400, (name, r)
        assert "error" in r.json(), (name, r)
        assert snapshot(d) == before, name
        assert [m for m in d.api("GET", "/api/tags").json()["models"] if m["name"].startswith("bad-")] == []
    assert d.req("GET", "/").status == 200


def upload_blob_bytes(d, data):
    import hashlib
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = d.req("POST", "/api/blobs/" + digest, body=data)
    assert r.status in (200, 201), r
    return digest


def test_create_with_missing_blob():
    d = Daemon("127.0.0.2").start()
    r = d.api("POST", "/api/create", {"model": "m", "files": {"x.gguf": "sha256:" + "1" * 64}, "stream": False})
    assert 400 <= r.status < 500 and "error" in r.json(), r
    r = d.api("POST", "/api/create", {"model": "m", "from": "does-not-exist", "stream": False})
    assert 400 <= r.status < 500 and "error" in r.json(), r
    assert d.manifest_files() == []


if __name__ == "__main__":
    run_tests(globals())
