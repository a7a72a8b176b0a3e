"""Create, list, show, copy and delete models on a real daemon, via the API and the CLI."""
import json
import os
import sys

from harness import SRC, Daemon, create_model, mkgguf, run_tests, sha256_file, tempdir, upload_blob

sys.path.insert(0, os.path.join(SRC, "tests", "tools"))


def test_root_version_and_routes():
    d = Daemon("127.0.0.2").start()
    r = d.req("GET", "/")
    assert r.status == 200 and r.body == b"Ollama is running", r
    r = d.req("HEAD", "/")
    assert r.status == 200 and r.body == b"", r
    v = d.api("GET", "/api/version")
    assert v.status == 200 and isinstance(v.json()["version"], str), v
    assert d.api("GET", "/api/tags").json() == {"models": []}
    assert d.api("GET", "/api/ps").json() == {"models": []}
    r = d.req("GET", "/no/such/route")
    assert r.status == 404 and r.body == b"404 page not found", r
    r = d.req("GET", "/api/create")
    assert r.status == 405, r


def test_create_list_show_copy_delete():
    d = Daemon("127.0.0.2").start()
    g = mkgguf(os.path.join(tempdir(), "tiny.gguf"), "--arch", "llama", "--seed", 1)
    gdigest = create_model(d, "tiny", g, template="{{ .Prompt }}", system="be brief",
                           parameters={"temperature": 0.5, "stop": ["<end>"]})
    tags = d.api("GET", "/api/tags").json()["models"]
    assert [m["name"] for m in tags] == ["tiny:latest"], tags
    m = tags[0]
    assert m["model"] == "tiny:latest"
    assert len(m["digest"]) == 64
    man_path = os.path.join(d.models, "manifests", "registry.ollama.ai", "library", "tiny", "latest")
    assert sha256_file(man_path) == "sha256:" + m["digest"]
    man = json.load(open(man_path))
    assert man["schemaVersion"] == 2
    assert m["size"] == man["config"]["size"] + sum(l["size"] for l in man["layers"])
    kinds = [l["mediaType"].rsplit(".", 1)[1] for l in man["layers"]]
    assert "model" in kinds and "template" in kinds and "system" in kinds and "params" in kinds, kinds
    assert any(l["digest"] == gdigest for l in man["layers"])
    assert m["details"]["format"] == "gguf" and m["details"]["family"] == "llama", m

    s = d.api("POST", "/api/show", {"model": "tiny"})
    assert s.status == 200, s
    s = s.json()
    assert s["template"] == "{{ .Prompt }}"
    assert s["system"] == "be brief"
    assert "temperature" in s["parameters"] and "stop" in s["parameters"], s["parameters"]
    assert s["model_info"]["general.architecture"] == "llama"
    assert "completion" in s["capabilities"]
    assert "FROM" in s["modelfile"]

    r = d.api("POST", "/api/copy", {"source": "tiny", "destination": "me/tiny2:v1"})
    assert r.status == 200 and r.body == b"", r
    names = sorted(m["name"] for m in d.api("GET", "/api/tags").json()["models"])
    assert names == ["me/tiny2:v1", "tiny:latest"], names
    # case-insensitive look-up
    assert d.api("POST", "/api/show", {"model": "TINY:Latest"}).status == 200

    blobs_before = d.blob_files()
    r = d.api("DELETE", "/api/delete", {"model": "tiny"})
    assert r.status == 200, r
    # blobs still used by the copy stay
    assert d.blob_files() == blobs_before
    r = d.api("DELETE", "/api/delete", {"name": "me/tiny2:v1"})
    assert r.status == 200, r
    assert d.blob_files() == [], d.blob_files()
    assert d.manifest_files() == []
    r = d.api("DELETE", "/api/delete", {"model": "tiny"})
    assert r.status == 404 and r.json() == {"error": "model 'tiny' not found"}, r
    r = d.api("POST", "/api/copy", {"source": "nope", "destination": "x"})
    assert r.status == 404 and r.json() == {"error": 'model "nope" not found'}, r


def test_create_streams_statuses():
    d = Daemon("127.0.0.2").start()
    g = mkgguf(os.path.join(tempdir(), "tiny.gguf"), "--seed", 2)
    digest = upload_blob(d, g)
    r = d.api("POST", "/api/create", {"model": "s1", "files": {"tiny.gguf": digest}})
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/x-ndjson")
    st = [l["status"] for l in r.lines()]
    assert st[0] == "parsing GGUF", st
    assert any(s.startswith("using existing layer sha256:") for s in st), st
    assert st[-2:] == ["writing manifest", "success"], st
    # from an existing model, overriding the system prompt
    r = d.api("POST", "/api/create", {"model": "s2", "from": "s1", "system": "new system", "stream": False})
    assert r.status == 200 and r.json() == {"status": "success"}, r
    assert d.api("POST", "/api/show", {"model": "s2"}).json()["system"] == "new system"


def test_cli_roundtrip():
    d = Daemon("127.0.0.2").start()
    tmp = tempdir()
    g = mkgguf(os.path.join(tmp, "m.gguf"), "--seed", 3)
    with open(os.path.join(tmp, "Modelfile"), "w") as f:
        f.write('FROM ./m.gguf\nTEMPLATE """{{ .System }}\n{{ .Prompt }}"""\nSYSTEM hello there\n'
                'PARAMETER temperature 0.2\nPARAMETER stop <a>\nPARAMETER stop <b>\nLICENSE MIT\n')
    d.cli("create", "clim", "-f", os.path.join(tmp, "Modelfile"))
    out = d.cli("list").stdout.decode()
    assert "clim:latest" in out and "NAME" in out, out
    out = d.cli("show", "clim", "--system").stdout.decode()
    assert "hello there" in out, out
    out = d.cli("show", "clim", "--template").stdout.decode()
    assert "{{ .Prompt }}" in out, out
    params = d.api("POST", "/api/show", {"model": "clim"}).json()["parameters"]
    assert "<a>" in params and "<b>" in params, params
    d.cli("cp", "clim", "clim2")
    d.cli("rm", "clim")
    out = d.cli("list").stdout.decode()
    assert "clim2:latest" in out and "clim:latest" not in out, out
    p = d.cli("show", "nosuch", check=False)
    assert p.returncode != 0 and b"not found" in p.stderr.lower(), p
    assert d.cli("--version").stdout.decode().startswith("ollamax version")


def mkadapter(path):
    """A LoRA adapter GGUF as llama.cpp's convert_lora_to_gguf.py writes one."""
    import numpy as np
    from gguf_writer import GGUFWriter
    w = GGUFWriter()
    w.add_string("general.architecture", "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", 16.0)
    w.add_tensor("blk.0.attn_q.weight.lora_a", np.arange(128, dtype=np.float32).reshape(2, 64))
    w.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((64, 2), dtype=np.float32))
    w.write(path)
    return path


def test_create_with_adapter():
    d = Daemon("127.0.0.2").start()
    tmp = tempdir()
    g = mkgguf(os.path.join(tmp, "m.gguf"), "--seed", 7)
    a = mkadapter(os.path.join(tmp, "lora.gguf"))
    # the CLI uploads the ADAPTER file and sends it in "adapters"
    with open(os.path.join(tmp, "Modelfile"), "w") as f:
        f.write("FROM ./m.gguf\nADAPTER ./lora.gguf\nSYSTEM hi\n")
    d.cli("create", "withlora", "-f", os.path.join(tmp, "Modelfile"))
    man_path = os.path.join(d.models, "manifests", "registry.ollama.ai", "library", "withlora", "latest")
    man = json.load(open(man_path))
    kinds = [l["mediaType"].rsplit(".", 1)[1] for l in man["layers"]]
    assert kinds == ["model", "adapter", "system"], kinds
    ad = man["layers"][1]
    assert ad["digest"] == sha256_file(a) and ad["size"] == os.path.getsize(a), ad
    mf = d.api("POST", "/api/show", {"model": "withlora"}).json()["modelfile"]
    blob = os.path.join(d.models, "blobs", "sha256-" + ad["digest"][7:])
    assert "\nADAPTER %s\n" % blob in mf, mf

    # over the API with `from`, streamed: the adapter follows the base's layers
    r = d.api("POST", "/api/create", {"model": "fromlora", "from": "withlora",
                                      "adapters": {"lora.gguf": ad["digest"]}})
    assert r.status == 200, r
    st = [l["status"] for l in r.lines()]
    assert st[:2] == ["parsing GGUF", "using existing layer " + man["layers"][0]["digest"]], st
    assert "using existing layer " + ad["digest"] in st and st[-2:] == ["writing manifest", "success"], st

    # a digest that is not in the store is refused and nothing is created
    missing = "sha256:" + "0" * 64
    blobs = d.blob_files()
    r = d.api("POST", "/api/create", {"model": "bad", "files": {"m.gguf": man["layers"][0]["digest"]},
                                      "adapters": {"x.gguf": missing}, "template": "t"})
    assert r.status == 400 and r.json()["error"].startswith("blob not found for x.gguf"), r
    r = d.api("POST", "/api/create", {"model": "bad", "from": "withlora", "adapters": {"x.gguf": "sha256:1"}})
    assert r.status == 400 and "invalid digest" in r.json()["error"], r
    assert d.blob_files() == blobs
    names = sorted(m["name"] for m in d.api("GET", "/api/tags").json()["models"])
    assert names == ["fromlora:latest", "withlora:latest"], names

    # the engine cannot apply an adapter: generation says so instead of
    # answering as if the adapter were not there
    r = d.api("POST", "/api/generate", {"model": "withlora", "prompt": "hi", "stream": False})
    assert r.status == 400 and "adapter" in r.json()["error"], r


def test_unreadable_manifest_keeps_its_blobs():
    d = Daemon("127.0.0.2").start()
    g = mkgguf(os.path.join(tempdir(), "tiny.gguf"), "--seed", 6)
    gdigest = create_model(d, "one", g)
    create_model(d, "two", g)
    # "one" becomes unreadable behind the daemon's back: it may still name
    # any blob, so deleting "two" must not take the shared layer with it
    path = os.path.join(d.models, "manifests", "registry.ollama.ai", "library", "one", "latest")
    with open(path, "w") as f:
        f.write("{not a manifest")
    r = d.api("DELETE", "/api/delete", {"model": "two"})
    assert r.status == 200, r
    assert ("sha256-" + gdigest[7:]) in d.blob_files(), d.blob_files()
    names = [m["name"] for m in d.api("GET", "/api/tags").json()["models"]]
    assert names == [], names


def test_adopts_existing_ollama_dir():
    a = Daemon("127.0.0.2").start()
    g = mkgguf(os.path.join(tempdir(), "tiny.gguf"), "--seed", 4)
    create_model(a, "adopted:v1", g)
    a.stop()
    # a second daemon pointed at the first one's models dir sees the model
    b = Daemon("127.0.0.3", env={"OLLAMA_MODELS": a.models}).start()
    names = [m["name"] for m in b.api("GET", "/api/tags").json()["models"]]
    assert names == ["adopted:v1"], names


if __name__ == "__main__":
    run_tests(globals())
