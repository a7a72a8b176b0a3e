"""Runs the npm client suites (tests/clients/*.test.mjs) against live daemons."""
import os
import subprocess

from harness import SRC, Daemon, big_gguf, create_model, mkgguf, run_tests, tempdir

CLIENTS = os.path.join(SRC, "tests", "clients")


def node_test(script, env):
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run(["node", "--test", "--test-reporter=spec", os.path.join(CLIENTS, script)],
                       cwd=CLIENTS, env=e, capture_output=True, timeout=600)
    out = p.stdout.decode() + p.stderr.decode()
    print(out[-6000:])
    assert p.returncode == 0, "%s failed" % script


def test_ollama_js_api():
    assert os.path.isdir(os.path.join(CLIENTS, "node_modules")), "run ./build.sh deps first"
    peer = Daemon("127.0.0.3").start()
    d = Daemon("127.0.0.2").start()
    g = mkgguf(os.path.join(tempdir(), "m.gguf"), "--seed", 11)
    # big enough to go through the swarm (small blobs take plain HTTP)
    pg = big_gguf(os.path.join(tempdir(), "p.gguf"), 3 << 20, seed=12)
    create_model(peer, "peermodel:v1", pg, system="from the peer")
    node_test("api.test.mjs", {"OLLAMAX_URL": d.url, "OLLAMAX_PEER": peer.addr, "OLLAMAX_GGUF": g})
    # the client's pull from the peer went through the swarm (the peer holds
    # every blob), not the peer's registry endpoints
    st = d.req("GET", "/api/swarm/status").json()
    assert st["bytes_down"] >= os.path.getsize(pg), st


if __name__ == "__main__":
    run_tests(globals())
