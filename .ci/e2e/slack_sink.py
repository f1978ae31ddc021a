#!/usr/bin/env python3
"""A Slack incoming-webhook stand-in on loopback: records every POST body
with the wall-clock time it arrived, one JSON line each, and answers "ok".

usage: slack_sink.py PORT OUTFILE
"""
import http.server, json, sys, time

port, out = int(sys.argv[1]), sys.argv[2]


class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
        with open(out, "a") as f:
            f.write(json.dumps({"t": time.time(), "path": self.path, "body": body}) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
