"""Shared fixtures for integration tests: real ollamax daemons on 127.0.0.x.

Every daemon gets its own temporary home, address and port; everything a test
starts is stopped (and its home removed) when the test ends, even on failure.
Tests are plain functions named test_*; run_tests() runs those of the calling
module and exits non-zero on the first failure of any.
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SRC = os.environ.get("OX_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("OLLAMAX_BIN") or os.path.join(SRC, "build", "ollamax")
PY = "/usr/bin/python3"
_cleanups = []


def on_cleanup(fn):
    _cleanups.append(fn)


def free_port(ip="127.0.0.1"):
    """A port free on ip now, below the kernel's ephemeral range, so that no
    socket bound to port 0 meanwhile (a swarm's, a client's, in a test
    running beside this one) can take it before the daemon binds it."""
    lo = 32768
    try:
        lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = random.randrange(max(1024, lo - 12000), lo)
        s = socket.socket()
        try:
            s.bind((ip, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tempdir(prefix="oxtest-"):
    d = tempfile.mkdtemp(prefix=prefix)
    on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def lines(self):
        return [json.loads(l) for l in self.body.decode().splitlines() if l.strip()]

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


def request(host, port, method, path, body=None, headers=None, timeout=60):
    """One HTTP request; body may be bytes, str, a dict (sent as JSON) or a file object."""
    h = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return Response(r.status, r.getheaders(), data)
    finally:
        c.close()


class Daemon:
    """An `ollamax serve` process with its own home on ip:port."""

    def __init__(self, ip="127.0.0.2", port=None, home=None, env=None, name=None):
        self.ip = ip
        self.auto_port = port is None
        self.port = port or free_port(ip)
        self.home = home or tempdir("oxhome-")
        self.env = dict(env or {})
        self.name = name or ip
        self.proc = None
        self.log_path = os.path.join(self.home, "daemon.log")
        on_cleanup(self.stop)

    @property
    def addr(self):
        return "%s:%d" % (self.ip, self.port)

    @property
    def url(self):
        return "http://" + self.addr

    @property
    def models(self):
        return os.path.join(self.home, "models")

    def environ(self):
        e = dict(os.environ)
        for k in ("OLLAMA_HOST", "OLLAMAX_HOST", "OLLAMA_MODELS", "OLLAMAX_MODELS", "OLLAMAX_PEERS"):
            e.pop(k, None)
        e.update({"OLLAMAX_HOME": self.home, "OLLAMAX_HOST": self.addr, "HOME": self.home})
        e.update(self.env)
        return e

    def start(self, wait=True):
        for attempt in range(3):
            self.logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen([BIN, "serve"], env=self.environ(), stdout=self.logf,
                                         stderr=subprocess.STDOUT)
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except AssertionError:
                # a port chosen here and taken by another process before the
                # daemon bound it: choose again (a port given by the test is kept)
                if not (self.auto_port and self.proc.poll() is not None and attempt < 2 and
                        "address already in use" in self.log().lower()):
                    raise
                self.port = free_port(self.ip)
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("daemon %s exited with %s:\n%s" % (self.name, self.proc.returncode, self.log()))
            try:
                r = request(self.ip, self.port, "GET", "/", timeout=2)
                if r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("daemon %s not ready:\n%s" % (self.name, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def req(self, method, path, body=None, headers=None, timeout=120):
        return request(self.ip, self.port, method, path, body, headers, timeout)

    def api(self, method, path, body=None, timeout=120):
        return self.req(method, path, body, timeout=timeout)

    def cli(self, *args, input=None, timeout=300, check=True):
        env = self.environ()
        p = subprocess.run([BIN] + list(args), env=env, input=input, capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("ollamax %s failed (%d): %s %s" % (" ".join(args), p.returncode,
                                                                    p.stdout.decode(), p.stderr.decode()))
        return p

    def blob_files(self):
        d = os.path.join(self.models, "blobs")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def manifest_files(self):
        out = []
        root = os.path.join(self.models, "manifests")
        for dp, _, fns in os.walk(root):
            for fn in fns:
                out.append(os.path.relpath(os.path.join(dp, fn), root))
        return sorted(out)


def mkgguf(path, *args):
    """Writes a tiny random model with tests/tools/mkgguf.py."""
    subprocess.run([PY, os.path.join(SRC, "tests", "tools", "mkgguf.py"), path] + [str(a) for a in args],
                   check=True, capture_output=True)
    return path


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return "sha256:" + h.hexdigest()


def upload_blob(d, path):
    digest = sha256_file(path)
    with open(path, "rb") as f:
        r = d.req("POST", "/api/blobs/" + digest, body=f.read())
    assert r.status in (200, 201), r
    return digest


def create_model(d, name, gguf_path, **extra):
    digest = upload_blob(d, gguf_path)
    body = {"model": name, "files": {os.path.basename(gguf_path): digest}, "stream": False}
    body.update(extra)
    r = d.api("POST", "/api/create", body)
    assert r.status == 200, r
    assert r.json() == {"status": "success"}, r
    return digest


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def run_tests(module_globals):
    only = sys.argv[1:]
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    failed = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        t0 = time.time()
        try:
            fn()
            print("PASS %s (%.1fs)" % (name, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (name, time.time() - t0), flush=True)
            traceback.print_exc()
        finally:
            while _cleanups:
                try:
                    _cleanups.pop()()
                except Exception:
                    traceback.print_exc()
    print("%d failed" % failed)
    sys.exit(1 if failed else 0)


def big_gguf(path, size, seed=1):
    """A valid GGUF of exactly `size` bytes: one I8 tensor of random bytes."""
    import random
    import struct
    key, val, tname = b"general.architecture", b"bench", b"data"
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    head += struct.pack("<Q", len(key)) + key + struct.pack("<I", 8) + struct.pack("<Q", len(val)) + val
    head += struct.pack("<Q", len(tname)) + tname + struct.pack("<I", 1)
    ne_at = len(head)
    head += struct.pack("<QIQ", 0, 24, 0)
    data_at = (len(head) + 31) // 32 * 32
    head = head[:ne_at] + struct.pack("<Q", size - data_at) + head[ne_at + 8:]
    head += b"\0" * (data_at - len(head))
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        f.write(head)
        left = size - data_at
        while left:
            n = min(left, 1 << 20)
            f.write(rnd.randbytes(n))
            left -= n
    return path
