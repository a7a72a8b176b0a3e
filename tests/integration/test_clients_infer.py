"""Runs the npm client suites for inference (ollama-js and openai) against a live daemon."""
import os
import subprocess

from harness import SRC, Daemon, create_model, mkgguf, run_tests, tempdir

CLIENTS = os.path.join(SRC, "tests", "clients")
TEMPLATE = ("{{ if .System }}<<SYS>>{{ .System }}<</SYS>>{{ end }}"
            "{{ range .Messages }}[{{ .Role }}] {{ .Content }}\n{{ end }}[assistant] ")


def node_test(script, env):
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run(["node", "--test", "--test-reporter=spec", os.path.join(CLIENTS, script)],
                       cwd=CLIENTS, env=e, capture_output=True, timeout=600)
    out = p.stdout.decode() + p.stderr.decode()
    print(out[-6000:])
    assert p.returncode == 0, "%s failed" % script


def daemon():
    assert os.path.isdir(os.path.join(CLIENTS, "node_modules")), "run ./build.sh deps first"
    d = Daemon("127.0.0.2").start()
    g = mkgguf(os.path.join(tempdir(), "m.gguf"), "--seed", 21)
    create_model(d, "jsinfer", g, template=TEMPLATE)
    return d


def test_ollama_js_inference():
    d = daemon()
    node_test("infer.test.mjs", {"OLLAMAX_URL": d.url, "OLLAMAX_MODEL": "jsinfer"})


def test_openai_client():
    d = daemon()
    node_test("openai.test.mjs", {"OLLAMAX_URL": d.url, "OLLAMAX_MODEL": "jsinfer"})


if __name__ == "__main__":
    run_tests(globals())
