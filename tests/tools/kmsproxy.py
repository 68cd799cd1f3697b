#!/usr/bin/env python3
"""kmsproxy: an HTTP reverse proxy that makes a real S3 server look like AWS S3 with
SSE-KMS on every object, for ferry's verification tests.

AWS documents that objects encrypted with SSE-KMS (or SSE-C) have ETags that are not an
MD5 digest of their data, and a server-side copy gives the new object a new ETag. Neither
S3Proxy nor moto does that, so this proxy does, in front of one of them:

  * every object-level response (HEAD, GET, PUT, CopyObject, CompleteMultipartUpload)
    carries x-amz-server-side-encryption: aws:kms and a key id;
  * every object ETag the client sees (headers, ListObjectsV2 and CopyObjectResult
    bodies) is replaced by md5("kms|bucket/key|real ETag"): 32 hex digits, stable for an
    object, not the MD5 of its data, and different for a copy (another key);
  * conditional request headers carrying such an ETag (If-Match, If-None-Match,
    x-amz-copy-source-if-match/-none-match) are mapped back to the real one.
Because it rewrites request headers, the upstream must not check signatures (moto).

Corruption, so tests can prove a bad copy is still caught: after forwarding a
CopyObject or PutObject whose target key contains --corrupt-body, the proxy overwrites
the target with the same number of different bytes; with --corrupt-size, with one byte
more. The overwrite asks the store for a SHA-256 checksum of what it writes, as AWS
computes a checksum of every object. Counts go to --counts as JSON after each request.

Prints "PORT <n>" once listening. Python 3 standard library only.
"""
import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import socketserver
import threading
import urllib.parse

KMS_KEY = "arn:aws:kms:us-east-1:000000000000:key/ferry-test-kms-key"
# The proxy's own requests: moto refuses anonymous ones on a private bucket but checks no
# signature, so any well-formed Authorization header will do.
AUTH = ("AWS4-HMAC-SHA256 Credential=kmsproxy/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64)
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-connection", "expect", "content-length"}


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.fake_to_real = {}
        self.counts = {"requests": 0, "etags_rewritten": 0, "corrupted": 0}

    def fake(self, bucket, key, real):
        real = real.strip('"')
        if not real:
            return real
        f = hashlib.md5(f"kms|{bucket}/{key}|{real}".encode()).hexdigest()
        with self.lock:
            self.fake_to_real[f] = real
            self.counts["etags_rewritten"] += 1
        return f

    def real(self, value):
        out = []
        for part in value.split(","):
            p = part.strip()
            if p == "*":
                out.append(p)
                continue
            with self.lock:
                r = self.fake_to_real.get(p.strip('"'))
            out.append(f'"{r}"' if r else p)
        return ", ".join(out)

    def bump(self, key):
        with self.lock:
            self.counts[key] += 1
            if self.args.counts:
                tmp = self.args.counts + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(self.counts, f)
                os.replace(tmp, self.args.counts)


def split_path(path):
    """"/bucket/key?query" -> (bucket, key (decoded), query dict)."""
    u = urllib.parse.urlsplit(path)
    parts = u.path.split("/", 2)
    bucket = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
    key = urllib.parse.unquote(parts[2]) if len(parts) > 2 else ""
    return bucket, key, urllib.parse.parse_qs(u.query, keep_blank_values=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main

    def log_message(self, fmt, *a):  # quiet: tests read --counts
        pass

    def upstream(self, method, path, headers, body):
        a = self.state.args
        c = http.client.HTTPConnection(a.upstream_host, a.upstream_port, timeout=120)
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            return r.status, r.reason, r.getheaders(), data
        finally:
            c.close()

    def corrupt(self, bucket, key, size_extra):
        # Read what the copy wrote, write different bytes back (moto checks no signature).
        st, _, _, data = self.upstream("GET", self.path.split("?", 1)[0],
                                       {"Authorization": AUTH}, None)
        if st != 200:
            return
        bad = bytes((b ^ 0xFF) for b in data) if data else b"\x00"
        if size_extra:
            bad = data + b"!"
        self.upstream("PUT", self.path.split("?", 1)[0],
                      {"Content-Type": "application/octet-stream", "Authorization": AUTH,
                       "x-amz-sdk-checksum-algorithm": "SHA256",
                       "x-amz-checksum-sha256":
                           base64.b64encode(hashlib.sha256(bad).digest()).decode(),
                       "Content-Length": str(len(bad))}, bad)
        self.state.bump("corrupted")

    def handle_any(self):
        st = self.state
        st.bump("requests")
        bucket, key, q = split_path(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        headers = {}
        for k, v in self.headers.items():
            lk = k.lower()
            if lk in HOP:
                continue
            if lk in ("if-match", "if-none-match", "x-amz-copy-source-if-match",
                      "x-amz-copy-source-if-none-match"):
                v = st.real(v)
            headers[k] = v
        if body is not None or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body or b""))
        status, reason, rh, data = self.upstream(self.command, self.path, headers, body)

        object_level = bool(key) and "uploadId" not in q and "uploads" not in q
        completing = bool(key) and "uploadId" in q and self.command == "POST"
        if 200 <= status < 300 and self.command in ("PUT",) and key and object_level:
            a = st.args
            if a.corrupt_body and a.corrupt_body in key:
                self.corrupt(bucket, key, False)
            elif a.corrupt_size and a.corrupt_size in key:
                self.corrupt(bucket, key, True)
        out = []
        for k, v in rh:
            lk = k.lower()
            if lk in HOP:
                continue
            if lk == "etag" and (object_level or completing) and 200 <= status < 300:
                v = f'"{st.fake(bucket, key, v)}"'
            out.append((k, v))
        if 200 <= status < 300 and (object_level or completing):
            out.append(("x-amz-server-side-encryption", "aws:kms"))
            out.append(("x-amz-server-side-encryption-aws-kms-key-id", KMS_KEY))
            if data and (b"<CopyObjectResult" in data or
                         b"<CompleteMultipartUploadResult" in data):
                data = re.sub(rb"<ETag>(?:&quot;|\")?([^<&\"]*)(?:&quot;|\")?</ETag>",
                              lambda m: b"<ETag>&quot;" + st.fake(bucket, key, m.group(1).decode()).encode()
                              + b"&quot;</ETag>", data, count=1)
        elif 200 <= status < 300 and not key and "list-type" in q and data:
            data = self.rewrite_listing(bucket, data, "url" in q.get("encoding-type", []))
        self.send_response(status, reason)
        for k, v in out:
            self.send_header(k, v)
        length = str(len(data))
        if self.command == "HEAD":  # the object's size, not the (empty) body's
            length = next((v for k, v in rh if k.lower() == "content-length"), "0")
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def rewrite_listing(self, bucket, data, url_encoded):
        st = self.state

        def one(m):
            block = m.group(0)
            km = re.search(rb"<Key>([^<]*)</Key>", block)
            if not km:
                return block
            k = km.group(1).decode()
            k = k.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") \
                 .replace("&quot;", '"').replace("&apos;", "'")
            if url_encoded:
                k = urllib.parse.unquote_plus(k)
            return re.sub(rb"<ETag>(?:&quot;|\")?([^<&\"]*)(?:&quot;|\")?</ETag>",
                          lambda e: b"<ETag>&quot;" + st.fake(bucket, k, e.group(1).decode()).encode()
                          + b"&quot;</ETag>", block, count=1)
        return re.sub(rb"<Contents>.*?</Contents>", one, data, flags=re.S)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="http://host:port of the S3 server")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--counts", default="")
    p.add_argument("--corrupt-body", default="", help="key substring: same size, other bytes")
    p.add_argument("--corrupt-size", default="", help="key substring: one byte more")
    a = p.parse_args()
    u = urllib.parse.urlsplit(a.upstream)
    a.upstream_host, a.upstream_port = u.hostname, u.port or 80
    Handler.state = State(a)
    srv = Server(("127.0.0.1", a.port), Handler)
    print(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
