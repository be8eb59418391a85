#!/usr/bin/env python3
"""A delaying HTTP proxy on loopback, for the benchmarks (not a test double):
it stands for the distance between a desk and IAM's endpoint. Every request
waits --delay-ms before it goes on to --upstream (the code-checking IAM
proxy); requests are served concurrently (one thread each, keep-alive), so
calls a client sends at once also wait at once.

Every request adds one JSON line to --log FILE: {"start", "end", "action",
"status"}, wall-clock seconds when the request arrived and when its answer
was sent. The benchmark counts an enrollment's sequential IAM rounds from
these times (the most requests no two of which overlap), not from anything
mfakey says about itself.

Usage: delay_proxy.py --listen-port 0 --upstream http://127.0.0.1:PORT
                      --delay-ms D --log FILE
Prints "listening PORT" once ready. Binds 127.0.0.1 only. Standard library only.
"""

import argparse
import http.client
import http.server
import json
import socket
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailers", "transfer-encoding", "upgrade", "content-length",
}


def action_of(headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action", ["?"])[0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The answer goes out in two writes (head, body): without TCP_NODELAY,
    # Nagle's algorithm and the client's delayed ACK add ~40 ms to each.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.forward()

    def do_POST(self):
        self.forward()

    def upstream(self):
        local = self.server.local
        if getattr(local, "conn", None) is None:
            u = urllib.parse.urlsplit(self.server.upstream)
            local.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            local.conn.connect()
            local.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return local.conn

    def exchange(self, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        for attempt in (1, 2):
            conn = self.upstream()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.server.local.conn = None
                if attempt == 2:
                    raise

    def forward(self):
        start = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        time.sleep(self.server.delay)
        status, headers, data = self.exchange(body)
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        line = {"start": start, "end": time.time(), "action": action_of(self.headers, body),
                "status": status}
        with self.server.log_lock:
            self.server.log.write(json.dumps(line) + "\n")
            self.server.log.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    server = Server(("127.0.0.1", a.listen_port), Handler)
    server.upstream = a.upstream
    server.delay = a.delay_ms / 1000.0
    server.local = threading.local()
    server.log = open(a.log, "a", encoding="utf-8")
    server.log_lock = threading.Lock()
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
