"""A small registry (the /v2 protocol) served from memory, with an optional rate
limit, that records every blob request: tests use it to interrupt pulls and to
see which byte ranges a resumed pull asks for."""
import hashlib
import http.server
import json
import re
import threading
import time


class Registry:
    def __init__(self, ip="127.0.0.5", rate=None):
        self.manifests = {}   # (ns, model, tag) -> bytes
        self.blobs = {}       # digest -> bytes
        self.rate = rate      # bytes/s per response, None = unlimited
        self.requests = []    # (method, path, range header)
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self.handle_any(head=True)

            def do_GET(self):
                self.handle_any(head=False)

            def handle_any(self, head):
                reg.requests.append((self.command, self.path, self.headers.get("Range")))
                m = re.match(r"^/v2/([^/]+)/([^/]+)/manifests/([^/]+)$", self.path)
                if m:
                    body = reg.manifests.get(m.groups())
                    if body is None:
                        return self.send_json(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]})
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(body)
                    return
                m = re.match(r"^/v2/([^/]+)/([^/]+)/blobs/(sha256:[0-9a-f]{64})$", self.path)
                if m and m.group(3) in reg.blobs:
                    data = reg.blobs[m.group(3)]
                    start, end = 0, len(data) - 1
                    rng = self.headers.get("Range")
                    status = 200
                    if rng:
                        rm = re.match(r"bytes=(\d+)-(\d*)", rng)
                        start = int(rm.group(1))
                        if rm.group(2):
                            end = min(int(rm.group(2)), len(data) - 1)
                        status = 206
                    self.send_response(status)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(end - start + 1))
                    self.send_header("Location", self.path)
                    if status == 206:
                        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))
                    self.end_headers()
                    if head:
                        return
                    pos = start
                    chunk = 16384
                    try:
                        while pos <= end:
                            n = min(chunk, end + 1 - pos)
                            self.wfile.write(data[pos:pos + n])
                            pos += n
                            if reg.rate:
                                time.sleep(n / reg.rate)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                self.send_json(404, {"errors": [{"code": "BLOB_UNKNOWN"}]})

            def send_json(self, status, obj):
                b = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(b)

        self.server = http.server.ThreadingHTTPServer((ip, 0), Handler)
        self.server.daemon_threads = True
        self.ip = ip
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "%s:%d" % (self.ip, self.port)

    def add_blob(self, data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[d] = data
        return d

    def add_model(self, ns, model, tag, layers, config=b'{"model_format":"gguf","model_family":"llama"}'):
        """layers: list of (media type suffix, bytes). Returns the manifest bytes."""
        cd = self.add_blob(config)
        man = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd,
                          "size": len(config)},
               "layers": [{"mediaType": "application/vnd.ollama.image." + kind, "digest": self.add_blob(data),
                           "size": len(data)} for kind, data in layers]}
        body = json.dumps(man, indent=3).encode()  # deliberately not compact: pulls must keep bytes as sent
        self.manifests[(ns, model, tag)] = body
        return body

    def close(self):
        self.server.shutdown()
        self.server.server_close()
