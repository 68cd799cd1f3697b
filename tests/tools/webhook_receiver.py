#!/usr/bin/env python3
"""Test helper: accepts webhook POSTs on 127.0.0.1 (free port), appends each body as one
line to the file given as argv[1], and prints the port on stdout. Answers 401 when
argv[2] (a token) is given and the bearer token does not match."""
import http.server
import sys

OUT = sys.argv[1]
TOKEN = sys.argv[2] if len(sys.argv) > 2 else None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if TOKEN and self.headers.get("Authorization") != "Bearer " + TOKEN:
            self.send_response(401)
            self.end_headers()
            return
        with open(OUT, "ab") as f:
            f.write(body + b"\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
