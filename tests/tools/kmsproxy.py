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
Rewriting a signed header breaks the client's SigV4 signature. moto checks none; for an
upstream that does (S3Proxy), --resign makes the proxy sign every request again with the
credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (environment, never argv): same
x-amz-date, scope and signed headers as the client's, the rewritten values. It first
checks that it computes the client's own signature for the request as received, so a
canonicalization of its own that differs from the client's shows up as an error, not as
a 403 from the store.

Corruption, so tests can prove a bad copy is still caught: after forwarding a
CopyObject or PutObject whose target key contains --corrupt-body, the proxy overwrites
the target with the same number of different bytes; with --corrupt-size, with one byte
more. The overwrite asks the store for a SHA-256 checksum of what it writes, as AWS
computes a checksum of every object. Counts go to --counts as JSON after each request.

Prints "PORT <n>" once listening. Python 3 standard library only.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
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
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-connection", "expect", "content-length"}


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.fake_to_real = {}
        self.counts = {"requests": 0, "etags_rewritten": 0, "corrupted": 0, "resigned": 0}
        self.region = "us-east-1"  # the clients' (from their Authorization), for our own

    def resign(self, method, target, orig_headers, headers):
        """With --resign: headers["Authorization"] signed again for the rewritten headers
        (orig_headers: as received). Raises ValueError if the client's own signature
        cannot be reproduced (a canonicalization that differs from the client's)."""
        a = self.args
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        m = AUTH_RE.fullmatch(auth.strip())
        if not a.resign or not m:
            return
        akid, _, region, service, signed, sig = m.groups()
        amz_date = next(v for k, v in headers.items() if k.lower() == "x-amz-date")
        payload = next((v for k, v in headers.items()
                        if k.lower() == "x-amz-content-sha256"), "UNSIGNED-PAYLOAD")
        self.region = region
        if sigv4(a.secret, method, target, orig_headers, signed, amz_date, region, service,
                 payload) != sig:
            raise ValueError("cannot reproduce the client's signature of %s %s" % (method, target))
        new = sigv4(a.secret, method, target, headers, signed, amz_date, region, service, payload)
        for k in [k for k in headers if k.lower() == "authorization"]:
            del headers[k]
        headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
                                    "SignedHeaders=%s, Signature=%s"
                                    % (akid, amz_date[:8], region, service, signed, new))
        self.bump("resigned")

    def own_auth(self, method, target, headers, body):
        """Signs one of the proxy's own requests (corruption): headers gain Host,
        x-amz-date, x-amz-content-sha256 and Authorization."""
        a = self.args
        if not a.resign:
            headers["Authorization"] = AUTH
            return
        amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers["Host"] = "%s:%d" % (a.upstream_host, a.upstream_port)
        headers["x-amz-date"] = amz_date
        headers["x-amz-content-sha256"] = hashlib.sha256(body or b"").hexdigest()
        signed = ";".join(sorted(k.lower() for k in headers))
        sig = sigv4(a.secret, method, target, headers, signed, amz_date, self.region, "s3",
                    headers["x-amz-content-sha256"])
        headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/aws4_request, "
                                    "SignedHeaders=%s, Signature=%s"
                                    % (a.access_key, amz_date[:8], self.region, signed, sig))

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


def sigv4(secret, method, target, headers, signed, amz_date, region, service, payload_hash):
    """SigV4 signature (hex) of a request; target is the raw "/path?query" as sent."""
    path, _, query = target.partition("?")
    pairs = []
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(k), safe="-_.~"),
                      urllib.parse.quote(urllib.parse.unquote(v), safe="-_.~")))
    cq = "&".join("%s=%s" % kv for kv in sorted(pairs))
    low = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    ch = "".join("%s:%s\n" % (h, low.get(h, "")) for h in signed.split(";"))
    creq = "\n".join([method, path, cq, ch, signed, payload_hash])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                      hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


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
        target = self.path.split("?", 1)[0]
        hdrs = {}
        self.state.own_auth("GET", target, hdrs, None)
        st, _, _, data = self.upstream("GET", target, hdrs, None)
        if st != 200:
            return
        bad = bytes((b ^ 0xFF) for b in data) if data else b"\x00"
        if size_extra:
            bad = data + b"!"
        hdrs = {"Content-Type": "application/octet-stream",
                "x-amz-sdk-checksum-algorithm": "SHA256",
                "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(bad).digest()).decode(),
                "Content-Length": str(len(bad))}
        self.state.own_auth("PUT", target, hdrs, bad)
        self.upstream("PUT", target, hdrs, bad)
        self.state.bump("corrupted")

    def handle_any(self):
        st = self.state
        st.bump("requests")
        bucket, key, q = split_path(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        headers = {}
        orig = dict(self.headers.items())
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
        try:
            st.resign(self.command, self.path, orig, headers)
        except ValueError as e:
            self.send_error(500, str(e))
            return
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
    p.add_argument("--resign", action="store_true",
                   help="sign requests again (credentials from AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY): for an upstream that checks signatures")
    a = p.parse_args()
    a.access_key = os.environ.get("AWS_ACCESS_KEY_ID", "")
    a.secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if a.resign and not (a.access_key and a.secret):
        p.error("--resign needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    u = urllib.parse.urlsplit(a.upstream)
    a.upstream_host, a.upstream_port = u.hostname, u.port or 80
    Handler.state = State(a)
    srv = Server(("127.0.0.1", a.port), Handler)
    print(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
