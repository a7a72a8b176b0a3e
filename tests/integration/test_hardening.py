"""Hardening: hostile HTTP, JSON, GGUF and registry input, and races on the
store. Each bad input gets a clear error, the daemon keeps serving, and the
store is left consistent. Run with OLLAMAX_BIN pointing at an ASan+UBSan build
to also fail on any sanitizer report (leaks included) in the daemon's log."""
import hashlib
import http.server
import json
import os
import socket
import struct
import threading
import time

from harness import Daemon, create_model, mkgguf, run_tests, tempdir

SAN_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def dg(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def stop_and_check(d):
    """Stops d (SIGTERM, so LeakSanitizer runs) and fails on sanitizer output."""
    d.stop()
    with open(d.log_path, "rb") as f:
        log = f.read().decode(errors="replace")
    for m in SAN_MARKS:
        assert m not in log, log[-6000:]


def raw(d, data, timeout=5):
    """Sends data, half-closes, returns all bytes the daemon answers."""
    s = socket.create_connection((d.ip, d.port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        s.close()
    return out


def status_of(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else None


def upload(d, data):
    digest = dg(data)
    r = d.req("POST", "/api/blobs/" + digest, body=data)
    assert r.status in (200, 201), r
    return digest


def error_of(r):
    j = r.json()
    assert isinstance(j.get("error"), str) and j["error"], r
    return j["error"]


# ---- raw HTTP ----------------------------------------------------------------

BLOB0 = b"/api/blobs/sha256:" + b"0" * 64
RAW_CASES = [
    # (request bytes, expected status)
    (b"\x00\x01\x02\r\n\r\n", 400),
    (b"GET /%00 HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
    (b"GET /%4 HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
    (b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20000 + b"\r\n", 431),
    (b"POST /api/show HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /api/show HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
    (b"POST /api/show HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n", 413),
    (b"POST /api/show HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"POST /api/show HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400),
    (b"POST /api/show HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n{}", 400),
    (b"POST /api/show HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n{}", 400),
    (b"POST " + BLOB0 + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc", 400),
    (b"POST " + BLOB0 + b" HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nabc", 400),
    (b"GET / HTTP/1.1\r\nHost: [" + b":" * 400 + b"\r\nConnection: close\r\n\r\n", 403),
    (b"BREW /api/tags HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
    (b"PATCH /api/tags HTTP/1.1\r\nConnection: close\r\n\r\n", 405),
]


def test_raw_http_garbage():
    d = Daemon("127.0.0.2").start()
    for data, want in RAW_CASES:
        out = raw(d, data)
        assert status_of(out) == want, (data[:80], out[:200])
        if want >= 400 and b"application/json" in out.split(b"\r\n\r\n")[0]:
            assert b'"error"' in out, out
    # pipelined requests then garbage: answered in order, then one 400
    out = raw(d, b"GET /api/version HTTP/1.1\r\n\r\n" * 3 + b"GARBAGE\x00\xff\r\n\r\n")
    assert out.count(b"HTTP/1.1 200 OK") == 3 and out.count(b"HTTP/1.1 400") == 1, out
    # many connections opened, some half-written, then reset
    socks = []
    for i in range(150):
        s = socket.create_connection((d.ip, d.port))
        s.sendall([b"GET / HTTP/1.1\r\nHo", BLOB0.join([b"POST ", b" HTTP/1.1\r\nContent-Length: 99\r\n\r\nab"]),
                   b""][i % 3])
        socks.append(s)
    assert d.req("GET", "/api/version", timeout=10).status == 200
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    assert d.req("GET", "/api/version", timeout=10).status == 200
    assert [b for b in d.blob_files() if b.startswith("sha256-")] == []
    stop_and_check(d)


# ---- JSON bodies --------------------------------------------------------------

WRONG = [None, True, 0, -1, 1.5, 1e308, "", "a" * 3000, [], [1, None], {}, {"a": [{}]}]


def test_json_wrong_types_everywhere():
    d = Daemon("127.0.0.2").start()
    g = mkgguf(os.path.join(tempdir(), "m.gguf"))
    dig = create_model(d, "base", g)
    eps = [
        ("POST", "/api/show", {"model": "base", "verbose": True, "system": "s"}),
        ("POST", "/api/create", {"model": "n1", "from": "base", "template": "t", "system": "s", "license": "L",
                                 "parameters": {"stop": ["a"]}, "messages": [{"role": "user", "content": "hi"}],
                                 "stream": False}),
        ("POST", "/api/create", {"model": "n2", "files": {"m.gguf": dig}, "quantize": "", "stream": False}),
        ("POST", "/api/copy", {"source": "base", "destination": "c1"}),
        ("DELETE", "/api/delete", {"model": "c1"}),
    ]
    for method, path, tmpl in eps:
        for k in list(tmpl) + ["name"]:
            for v in WRONG:
                b = dict(tmpl)
                b[k] = v
                r = d.req(method, path, body=json.dumps(b), timeout=60)
                assert r.status < 500, (path, b, r)
                if r.status >= 400:
                    error_of(r)
        for body in (b"[" * 100000, b'{"a":' * 50000, b'{"model":"\\u0000"}', b"{}{}", b'"x"'):
            r = d.req(method, path, body=body)
            assert r.status == 400, (path, body[:40], r)
            error_of(r)
    assert d.api("POST", "/api/show", {"model": "base"}).status == 200
    stop_and_check(d)


def test_create_messages_of_any_shape():
    """Bug: messages without role/content (or not objects) leaked a JSON
    string per missing field (json_object_set on a fresh json_string)."""
    d = Daemon("127.0.0.2").start()
    create_model(d, "base", mkgguf(os.path.join(tempdir(), "m.gguf")))
    r = d.api("POST", "/api/create", {"model": "m2", "from": "base", "stream": False,
                                      "messages": [{"role": "user"}, 5, {"content": "x"}, None]})
    assert r.status == 200 and r.json() == {"status": "success"}, r
    s = d.api("POST", "/api/show", {"model": "m2"}).json()
    assert s["messages"][0] == {"role": "user", "content": ""}, s["messages"]
    assert s["messages"][1] == {"role": "", "content": ""}, s["messages"]
    assert s["messages"][2] == {"role": "", "content": "x"}, s["messages"]
    stop_and_check(d)


def test_create_deeply_nested_values():
    """Bug: parameters or messages nested past the JSON writer's depth gave a
    500 "out of memory" (streamed: an error line saying the same)."""
    d = Daemon("127.0.0.2").start()
    create_model(d, "base", mkgguf(os.path.join(tempdir(), "m.gguf")))
    deep = json.loads("[" * 300 + "]" * 300)
    for extra, field in (({"parameters": {"stop": deep}}, "parameters"),
                         ({"messages": [{"role": "user", "content": "x", "images": deep}]}, "messages")):
        for stream in (False, True):
            body = dict({"model": "m2", "from": "base", "stream": stream}, **extra)
            r = d.req("POST", "/api/create", body=json.dumps(body))
            assert r.status == 400, r
            assert error_of(r) == field + " nested too deeply (more than 64 levels)", r
    ok = json.loads("[" * 30 + "]" * 30)
    r = d.api("POST", "/api/create", {"model": "m2", "from": "base", "stream": False,
                                      "messages": [{"role": "user", "content": "x", "images": ok}]})
    assert r.status == 200, r
    assert d.api("POST", "/api/show", {"model": "m2"}).json()["messages"][0]["images"] == ok
    stop_and_check(d)


# ---- GGUF -----------------------------------------------------------------------

def gguf_bad_key_type(key):
    """A GGUF whose first metadata key (raw bytes) has the unknown type 99."""
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key + struct.pack("<I", 99) + b"\0" * 16


def test_gguf_error_with_non_utf8_key():
    """Bug: a GGUF error quoting a key that is not UTF-8 was answered as a
    bare 400 "{}": json_string() refused the message."""
    d = Daemon("127.0.0.2").start()
    dig = upload(d, gguf_bad_key_type(b"k\xff\xfe"))
    for stream in (False, True):
        r = d.api("POST", "/api/create", {"model": "bad", "files": {"m.gguf": dig}, "stream": stream})
        assert r.status == 400, r
        msg = error_of(r)
        assert "unknown value type 99" in msg and "k\ufffd\ufffd" in msg, msg
    assert d.manifest_files() == []
    stop_and_check(d)


def test_cli_create_from_device():
    """Bug: `create` with FROM /dev/zero (or a FIFO) hashed the endless
    stream forever instead of refusing a file that is not a regular file."""
    d = Daemon("127.0.0.2").start()
    td = tempdir()
    fifo = os.path.join(td, "pipe.gguf")
    os.mkfifo(fifo)
    for src in ("/dev/zero", "./pipe.gguf"):
        mf = os.path.join(td, "Modelfile")
        with open(mf, "w") as f:
            f.write("FROM %s\n" % src)
        t0 = time.time()
        p = d.cli("create", "m", "-f", mf, check=False, timeout=60)
        assert p.returncode != 0 and time.time() - t0 < 30, (src, p)
        assert b"not a regular file" in p.stderr, p.stderr
    assert d.manifest_files() == []
    stop_and_check(d)


def test_gguf_mutations_create_and_show():
    """Randomly damaged GGUFs (fixed seed): create answers success or a 400
    with a non-empty error, show of what was created answers JSON."""
    import random
    d = Daemon("127.0.0.2").start()
    with open(mkgguf(os.path.join(tempdir(), "m.gguf")), "rb") as f:
        base = f.read()
    rnd = random.Random(3)
    for i in range(60):
        b = bytearray(base)
        for _ in range(rnd.randint(1, 6)):
            p = rnd.randrange(min(len(b), 4096))
            op = rnd.randint(0, 3)
            if op == 0:
                b[p] = rnd.randrange(256)
            elif op == 1:
                b[p:p + 8] = struct.pack("<Q", rnd.choice([0, 1, 2 ** 32, 2 ** 63, 2 ** 64 - 1, 13, 7]))
            elif op == 2:
                b[p:p + 4] = struct.pack("<I", rnd.choice([0, 1, 8, 9, 12, 13, 30, 2 ** 31, 0xffffffff]))
            else:
                del b[p:]
        dig = upload(d, bytes(b))
        r = d.api("POST", "/api/create", {"model": "g%d" % i, "files": {"m.gguf": dig}, "stream": False})
        assert r.status in (200, 400), (i, r)
        if r.status == 400:
            error_of(r)
            continue
        for verbose in (False, True):
            s = d.api("POST", "/api/show", {"model": "g%d" % i, "verbose": verbose})
            assert s.status in (200, 500), (i, s)
            if s.status == 500:
                error_of(s)
        assert d.api("DELETE", "/api/delete", {"model": "g%d" % i}).status == 200
    assert d.manifest_files() == []
    stop_and_check(d)


# ---- hostile registry -------------------------------------------------------------

class Hostile:
    """A registry whose every answer comes from self.fn(handler)."""

    def __init__(self, ip="127.0.0.6"):
        self.fn = None
        reg = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                self.go()

            def do_HEAD(self):
                self.go()

            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def go(self):
                try:
                    reg.fn(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.srv = http.server.ThreadingHTTPServer((ip, 0), H)
        self.srv.daemon_threads = True
        self.addr = "%s:%d" % (ip, self.srv.server_address[1])
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def send(h, status, body, extra=(), ctype="application/octet-stream"):
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    for k, v in extra:
        h.send_header(k, v)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


CFG = b'{"model_format":"gguf"}'
BLOB = b"GGUF" + b"\0" * 100


def manifest(layers, pad=None):
    m = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": dg(CFG),
                    "size": len(CFG)},
         "layers": [{"mediaType": "application/vnd.ollama.image." + k, "digest": dg(b), "size": n}
                    for k, b, n in layers]}
    if pad:
        m["pad"] = pad
    return json.dumps(m).encode()


def serve(man, blobs, blob_fn=None):
    def fn(h):
        if "/manifests/" in h.path:
            return send(h, 200, man, ctype="application/vnd.docker.distribution.manifest.v2+json")
        d = h.path.rsplit("/", 1)[1]
        if blob_fn:
            return blob_fn(h, d)
        if d in blobs:
            return send(h, 200, blobs[d])
        send(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
    return fn


def test_pull_hostile_registry():
    reg = Hostile()
    d = Daemon("127.0.0.2").start()
    blobs = {dg(BLOB): BLOB, dg(CFG): CFG}
    cases = [
        # manifest over the 4 MiB cap: said so, not curl's "Failure writing output"
        ("huge", serve(manifest([("model", BLOB, len(BLOB))], pad="p" * (5 << 20)), blobs), None,
         "manifest larger than"),
        # blob bigger than the manifest's size: fails at once with the reason
        ("small-size", serve(manifest([("model", BLOB, 10)]), blobs), None, "more than the 10 bytes"),
        # 200 with the whole blob to a range request
        ("large-size", serve(manifest([("model", BLOB, 1000)]), blobs), None, "unexpected 200 OK"),
        # redirects to other schemes are refused (curl would read the file)
        ("file-redirect", serve(manifest([("model", BLOB, len(BLOB))]), blobs,
                                lambda h, dd: send(h, 307, b"", [("Location", "file:///etc/passwd")])), None,
         "bad redirect"),
        # token realm on another scheme: no request made
        ("file-realm", lambda h: send(h, 401, b"{}", [("WWW-Authenticate",
                                                          'Bearer realm="file:///etc/passwd",service="x"')]),
         None, "401 Unauthorized"),
        ("wrong-bytes", serve(manifest([("model", BLOB, len(BLOB))]), blobs,
                              lambda h, dd: send(h, 200, b"GGUF" + b"\1" * 100 if dd == dg(BLOB) else CFG)),
         None, "digest mismatch"),
        ("bad-digest", serve(manifest([("model", BLOB, len(BLOB))]).replace(dg(BLOB)[7:].encode(), b"../" * 20),
                             blobs), None, "invalid digest"),
        ("neg-size", serve(manifest([("model", BLOB, -1)]), blobs), None, "bad size"),
        # manifest that is not UTF-8: the streamed error line must still come
        ("not-utf8", lambda h: send(h, 200, b'{"schemaVersion": \xff\xfe}'), True, "manifest"),
    ]
    for tag, fn, stream, want in cases:
        reg.fn = fn
        name = "%s/lib/m:%s" % (reg.addr, tag)
        r = d.api("POST", "/api/pull", {"model": name, "insecure": True, "stream": bool(stream)}, timeout=60)
        if stream:
            lines = r.lines()
            assert r.status == 200 and "error" in lines[-1], (tag, r)
            msg = lines[-1]["error"]
        else:
            assert r.status >= 400, (tag, r)
            msg = error_of(r)
        assert want in msg, (tag, msg)
        assert d.manifest_files() == [], (tag, d.manifest_files())
        for b in d.blob_files():
            if b.startswith("sha256-"):
                with open(os.path.join(d.models, "blobs", b), "rb") as f:
                    assert "sha256-" + hashlib.sha256(f.read()).hexdigest() == b, (tag, b)
    reg.close()
    assert d.req("GET", "/api/version").status == 200
    stop_and_check(d)


def test_show_non_utf8_layers():
    """Bug: show dropped the template/system/license of a (pulled) model whose
    layers are not UTF-8: json_string() refused them."""
    reg = Hostile()
    d = Daemon("127.0.0.2").start()
    tmpl, system, lic = b"\xff{{ .Prompt }}", b"sys \xfe", b"lic \xc3"
    with open(mkgguf(os.path.join(tempdir(), "m.gguf")), "rb") as f:
        model = f.read()
    blobs = {dg(x): x for x in (model, CFG, tmpl, system, lic)}
    man = manifest([("model", model, len(model)), ("template", tmpl, len(tmpl)), ("system", system, len(system)),
                    ("license", lic, len(lic))])
    reg.fn = serve(man, blobs)
    name = "%s/lib/m:t" % reg.addr
    r = d.api("POST", "/api/pull", {"model": name, "insecure": True, "stream": False})
    assert r.status == 200, r
    s = d.api("POST", "/api/show", {"model": name})
    assert s.status == 200, s
    j = s.json()
    assert j.get("template") == "\ufffd{{ .Prompt }}", j
    assert j.get("system") == "sys \ufffd", j
    assert j.get("license") == "lic \ufffd", j
    assert "TEMPLATE" in j.get("modelfile", ""), j
    reg.close()
    stop_and_check(d)


def test_damaged_store():
    """Hand-damaged manifests get clear errors. Bugs: create from a model with
    a missing layer answered just the digest as its error; copy of it said
    the model was "not found" although show finds it."""
    d = Daemon("127.0.0.2").start()
    dig = create_model(d, "base", mkgguf(os.path.join(tempdir(), "m.gguf")))
    lib = os.path.join(d.models, "manifests", "registry.ollama.ai", "library")
    with open(os.path.join(lib, "base", "latest"), "rb") as f:
        good = f.read()
    os.makedirs(os.path.join(lib, "hand"))
    variants = {"garbage": b"\xff\x00garbage", "empty": b"", "array": b"[]", "nocfg": b'{"schemaVersion":2}',
                "deep": b'{"layers":' + b"[" * 5000 + b"]" * 5000 + b"}",
                "missing": good.replace(dig[7:].encode(), b"1" * 64)}
    for k, v in variants.items():
        with open(os.path.join(lib, "hand", k), "wb") as f:
            f.write(v)
    for k in variants:
        for path, body in (("/api/show", {"model": "hand:" + k}),
                           ("/api/create", {"model": "x", "from": "hand:" + k, "stream": False}),
                           ("/api/copy", {"source": "hand:" + k, "destination": "y"})):
            r = d.api("POST", path, body)
            assert r.status >= 400, (k, path, r)
            error_of(r)
    r = d.api("POST", "/api/create", {"model": "x", "from": "hand:missing", "stream": False})
    assert error_of(r) == "layer sha256:%s is missing from the store" % ("1" * 64), r
    r = d.api("POST", "/api/copy", {"source": "hand:missing", "destination": "y"})
    assert r.status == 500 and "is damaged" in error_of(r), r
    assert d.api("GET", "/api/tags").status == 200
    for k in variants:
        assert d.api("DELETE", "/api/delete", {"model": "hand:" + k}).status == 200, k
    assert d.manifest_files() == ["registry.ollama.ai/library/base/latest"], d.manifest_files()
    stop_and_check(d)


# ---- races on the store ----------------------------------------------------------

def test_concurrent_create_copy_delete():
    d = Daemon("127.0.0.2").start()
    dig = create_model(d, "base", mkgguf(os.path.join(tempdir(), "m.gguf")))
    errors = []

    def worker(k):
        try:
            for i in range(25):
                op = (i + k) % 4
                if op == 0:
                    r = d.api("POST", "/api/create", {"model": "race", "files": {"m.gguf": dig}, "stream": False})
                elif op == 1:
                    r = d.api("POST", "/api/copy", {"source": "race", "destination": "race2"})
                elif op == 2:
                    r = d.api("DELETE", "/api/delete", {"model": "race"})
                else:
                    r = d.api("POST", "/api/create", {"model": "race2", "from": "race", "stream": False,
                                                      "system": "s%d" % k})
                if r.status not in (200, 404):
                    errors.append(r)
                if r.status == 404:
                    error_of(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:5]
    # whatever survived is whole: every listed model shows, no temp files remain
    for m in d.api("GET", "/api/tags").json()["models"]:
        assert d.api("POST", "/api/show", {"model": m["name"]}).status == 200, m
    stop_and_check(d)


def test_blob_upload_racing_delete():
    d = Daemon("127.0.0.2").start()
    data = os.urandom(3 << 20)
    digest = dg(data)
    errors = []

    def up():
        for _ in range(8):
            r = d.req("POST", "/api/blobs/" + digest, body=data)
            if r.status not in (200, 201):
                errors.append(r)

    def rm():
        for i in range(30):
            d.api("DELETE", "/api/delete", {"model": "nothing%d" % i})
            d.req("HEAD", "/api/blobs/" + digest)

    ts = [threading.Thread(target=up) for _ in range(3)] + [threading.Thread(target=rm)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    assert d.req("HEAD", "/api/blobs/" + digest).status == 200
    p = os.path.join(d.models, "blobs", digest.replace(":", "-"))
    with open(p, "rb") as f:
        assert dg(f.read()) == digest
    stop_and_check(d)


if __name__ == "__main__":
    run_tests(globals())
