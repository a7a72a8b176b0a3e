"""The store across restarts: unused blobs are pruned at start-up (as Ollama
does) unless OLLAMAX_NOPRUNE / OLLAMA_NOPRUNE is set; a model's blobs and a
resumable partial download stay."""
import hashlib
import os

from harness import Daemon, create_model, mkgguf, run_tests, tempdir

# Neither set unless a test says so (the runner's environment may have them).
NO_ENV = {"OLLAMAX_NOPRUNE": "", "OLLAMA_NOPRUNE": ""}


def dg(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def upload(d, data):
    digest = dg(data)
    r = d.req("POST", "/api/blobs/" + digest, body=data)
    assert r.status == 201, r
    return digest


def has_blob(d, digest):
    return d.req("HEAD", "/api/blobs/" + digest).status == 200


def restart(d, **env):
    d.stop()
    d.env = dict(NO_ENV, **env)
    d.start()


def test_verify_removes_a_bad_blob():
    d = Daemon("127.0.0.2").start()
    digest = create_model(d, "v:1", mkgguf(os.path.join(tempdir(), "v.gguf"), "--seed", 4), system="s")
    p = d.cli("verify", "v:1")
    assert p.stdout.decode().strip() == "verified 3 blob(s)", p.stdout  # model, system, config
    r = d.api("POST", "/api/verify", {})  # every blob in the store
    assert r.status == 200 and r.json() == {"verified": 3, "removed": [], "missing": []}, r
    # the model's bytes go bad on disk: verify finds it and takes it out
    path = os.path.join(d.models, "blobs", "sha256-" + digest[7:])
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe")
    p = d.cli("verify", "v:1", check=False)
    out = p.stdout.decode()
    assert p.returncode == 1 and "removed %s" % digest in out and "verified 2 blob(s)" in out, out
    assert not os.path.exists(path)
    r = d.api("POST", "/api/verify", {"model": "v:1"})
    assert r.json() == {"verified": 2, "removed": [], "missing": [digest]}, r
    r = d.api("POST", "/api/verify", {"model": "nope"})
    assert r.status == 404 and r.json() == {"error": "model 'nope' not found"}, r
    r = d.api("POST", "/api/verify", {"model": "bad name!"})
    assert r.status == 400, r
    p = d.cli("verify", "nope", check=False)
    assert p.returncode == 1 and b"not found" in p.stderr, p


def test_prune_at_start():
    d = Daemon("127.0.0.2", env=NO_ENV).start()
    g = mkgguf(os.path.join(tempdir(), "keep.gguf"), "--seed", 5)
    create_model(d, "keep", g, template="{{ .Prompt }}")
    model_blobs = d.blob_files()
    assert len(model_blobs) >= 2, model_blobs
    loose = upload(d, b"uploaded, never named by a manifest")
    assert has_blob(d, loose)

    # leftovers in tmp/: a resumable pull of an absent blob (partial + its
    # sidecar), a finished one (its blob is committed), swarm staging with
    # resume data of an absent blob, and the same of a committed one
    tmp = os.path.join(d.home, "tmp")
    absent = dg(b"a blob still being downloaded")[7:]
    done = model_blobs[0][len("sha256-"):]
    files = {}
    for name, keep in (("sha256-%s-partial" % absent, True), ("sha256-%s-partial.parts" % absent, True),
                       ("sha256-%s-partial" % done, False), ("sha256-%s-partial.parts" % done, False),
                       ("swarm/%s/sha256-%s" % (absent, absent), True), ("swarm/%s.resume" % absent, True),
                       ("swarm/%s/sha256-%s" % (done, done), False), ("swarm/%s.resume" % done, False)):
        p = os.path.join(tmp, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(b"some bytes already fetched")
        files[p] = keep

    restart(d)
    assert not has_blob(d, loose)
    assert ("sha256-" + loose[7:]) not in d.blob_files()
    assert d.blob_files() == model_blobs, (d.blob_files(), model_blobs)
    assert "pruned 1 unused blobs" in d.log(), d.log()
    for p, keep in files.items():
        assert os.path.exists(p) == keep, (p, keep)
    assert not os.path.exists(os.path.join(tmp, "swarm", done))
    # the model is whole and usable
    tags = d.api("GET", "/api/tags").json()["models"]
    assert [m["name"] for m in tags] == ["keep:latest"], tags
    assert tags[0]["details"]["format"] == "gguf", tags
    assert d.api("POST", "/api/show", {"model": "keep"}).status == 200

    # a restart with nothing to prune changes nothing
    restart(d)
    assert d.blob_files() == model_blobs
    for p, keep in files.items():
        assert os.path.exists(p) == keep, (p, keep)


def test_noprune():
    d = Daemon("127.0.0.2", env=NO_ENV).start()
    loose = upload(d, b"kept while NOPRUNE is set")
    for env in ({"OLLAMAX_NOPRUNE": "1"}, {"OLLAMA_NOPRUNE": "1"}, {"OLLAMA_NOPRUNE": "true"}):
        restart(d, **env)
        assert has_blob(d, loose), env
        assert "not pruning unused blobs" in d.log()
    # false values of Ollama's boolean prune as usual; OLLAMAX_ wins
    restart(d, OLLAMAX_NOPRUNE="0", OLLAMA_NOPRUNE="1")
    assert not has_blob(d, loose)
    assert d.blob_files() == []


if __name__ == "__main__":
    run_tests(globals())
