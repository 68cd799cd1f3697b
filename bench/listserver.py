#!/usr/bin/env python3
"""listserver: a SYNTHETIC S3 endpoint for listing benchmarks (bench/huge-split).

Serves one bucket whose prefix holds --keys objects named <prefix>part-0000000 ...
(zero-padded, so byte order is index order) -- or, with --dirs D, spread evenly over D
directories, <prefix>d0000/part-0000000 ... -- without storing anything: ListObjectsV2
pages (with a delimiter too) are generated on the fly, each answered after --latency-ms
(a real store's round trip). HEAD of any bucket, PUT and DELETE of any key succeed (a worker's validation
writes a probe); HEAD/GET of an object answer as an empty object, except with
--inventory-dir DIR, where GET of <bucket>/inv/NAME serves the file DIR/NAME (an S3
Inventory's manifest and data files, after --latency-ms too). It checks no signature. Figures measured against it are listing/splitting figures only, and must be
labelled synthetic: copies are verified against real servers elsewhere.

Prints "listserver: listening on 127.0.0.1:PORT" and writes PORT to --port-file.
Counts LIST requests into --counts (JSON) on exit and every 100 pages.
"""
import argparse
import bisect
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMPTY_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="data/")
    p.add_argument("--keys", type=int, default=1000000)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--dirs", type=int, default=0)
    p.add_argument("--inventory-dir")
    p.add_argument("--port-file")
    p.add_argument("--counts")
    a = p.parse_args()

    width = 7
    lock = threading.Lock()
    counts = {"list": 0, "other": 0}

    per_dir = -(-a.keys // a.dirs) if a.dirs > 0 else 0

    def key(i):
        if per_dir:
            return "%sd%04d/part-%0*d" % (a.prefix, i // per_dir, width, i)
        return "%spart-%0*d" % (a.prefix, width, i)

    class Keys:  # a virtual sorted sequence for bisect
        def __len__(self):
            return a.keys

        def __getitem__(self, i):
            return key(i)

    keys = Keys()

    def dump():
        if a.counts:
            with lock:
                data = dict(counts)
            with open(a.counts + ".tmp", "w") as f:
                json.dump(data, f)
            os.replace(a.counts + ".tmp", a.counts)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, code, body=b"", headers=()):
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def drain(self):
            n = int(self.headers.get("Content-Length") or 0)
            while n > 0:
                chunk = self.rfile.read(min(n, 65536))
                if not chunk:
                    break
                n -= len(chunk)

        def path_parts(self):
            u = urllib.parse.urlsplit(self.path)
            parts = u.path.lstrip("/").split("/", 1)
            return parts[0], urllib.parse.unquote(parts[1]) if len(parts) > 1 else "", \
                urllib.parse.parse_qs(u.query, keep_blank_values=True)

        def do_GET(self):
            bucket, obj, q = self.path_parts()
            if bucket != a.bucket:
                return self.reply(404, b"<Error><Code>NoSuchBucket</Code></Error>")
            if obj and a.inventory_dir and obj.startswith("inv/"):
                name = obj[len("inv/"):]
                path = os.path.join(a.inventory_dir, name)
                with lock:
                    counts["inventory_get"] = counts.get("inventory_get", 0) + 1
                if "/" in name or name.startswith(".") or not os.path.isfile(path):
                    return self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
                if a.latency_ms:
                    time.sleep(a.latency_ms / 1000.0)
                with open(path, "rb") as f:
                    return self.reply(200, f.read(), [("ETag", '"inventory"')])
            if obj:
                with lock:
                    counts["other"] += 1
                return self.reply(200, b"", [("ETag", EMPTY_ETAG)])
            if q.get("list-type", [""])[0] != "2":
                return self.reply(400, b"<Error><Code>InvalidRequest</Code></Error>")
            prefix = q.get("prefix", [""])[0]
            after = q.get("continuation-token", [""])[0] or q.get("start-after", [""])[0]
            max_keys = min(int(q.get("max-keys", ["1000"])[0] or 1000), 1000)
            start = max(bisect.bisect_right(keys, after) if after else 0,
                        bisect.bisect_left(keys, prefix))
            out = []
            i = start
            # every key starts with a.prefix: any other prefix selects nothing or all
            if prefix and not (a.prefix.startswith(prefix) or prefix.startswith(a.prefix)):
                i = a.keys
            delim = q.get("delimiter", [""])[0]
            cps = []
            while i < a.keys and len(out) + len(cps) < max_keys:
                k = key(i)
                if not k.startswith(prefix):
                    i += 1
                    continue
                d = k.find(delim, len(prefix)) if delim else -1
                if d < 0:
                    out.append(k)
                    i += 1
                    continue
                # rolled up: one CommonPrefixes entry, then past every key under it (the
                # prefix holding start-after too, as S3 rolls up the keys after it)
                cp = k[:d + len(delim)]
                cps.append(cp)
                i = bisect.bisect_left(keys, cp[:-1] + chr(ord(cp[-1]) + 1))
            truncated = i < a.keys and key(i).startswith(prefix)
            if a.latency_ms:
                time.sleep(a.latency_ms / 1000.0)
            x = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                 "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
                 "<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount>"
                 "<MaxKeys>%d</MaxKeys><IsTruncated>%s</IsTruncated>"
                 % (a.bucket, prefix, len(out) + len(cps), max_keys,
                    "true" if truncated else "false")]
            for k in out:
                x.append("<Contents><Key>%s</Key><LastModified>2026-01-01T00:00:00.000Z"
                         "</LastModified><ETag>%s</ETag><Size>0</Size>"
                         "<StorageClass>STANDARD</StorageClass></Contents>"
                         % (k, EMPTY_ETAG.replace('"', "&quot;")))
            for cp in cps:
                x.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % cp)
            x.append("</ListBucketResult>")
            with lock:
                counts["list"] += 1
                if delim:
                    counts["list_delimited"] = counts.get("list_delimited", 0) + 1
                n = counts["list"]
            if n % 100 == 0:
                dump()
            self.reply(200, "".join(x).encode(), [("Content-Type", "application/xml")])

        def do_HEAD(self):
            bucket, obj, _ = self.path_parts()
            with lock:
                counts["other"] += 1
            # any bucket exists (the target of the benchmark's dataset too)
            self.reply(200, b"", [("ETag", EMPTY_ETAG)] if obj else [])

        def do_PUT(self):
            self.drain()
            with lock:
                counts["other"] += 1
            self.reply(200, b"", [("ETag", EMPTY_ETAG)])

        def do_DELETE(self):
            with lock:
                counts["other"] += 1
            self.reply(204)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(a.port_file + ".tmp", a.port_file)
    print("listserver: listening on 127.0.0.1:%d" % port, flush=True)

    def stop(*_):
        dump()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        srv.serve_forever()
    finally:
        dump()


if __name__ == "__main__":
    main()
