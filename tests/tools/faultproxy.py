#!/usr/bin/env python3
"""faultproxy: a small fault-injecting HTTP/1.1 reverse proxy for ferry's tests.

Sits between a client (the worker) and an S3 server (S3Proxy) and, for a chosen
fraction of requests, injects one kind of fault:

  slowdown   answer 503 SlowDown with an S3 XML error body (request not forwarded)
  reset      forward, then send part of the response and reset the connection (RST)
  latency    forward after --latency-ms of delay
  truncate   forward, send the headers and part of the body, then close (FIN)
  badlen     forward, send the response with a Content-Length larger than the body,
             then close
  forbidden  answer 403 AccessDenied (a permanent fault; request not forwarded)
  throttle   answer 503 SlowDown to any request that arrives while --max-concurrent
             others are being served (a store that admits N requests at once, as S3
             does per prefix while it scales); --rate is ignored

--delay-ms adds that much latency to every forwarded request (any kind), so that the
number of requests in flight matters as it does against a real store.

Per-key rules (--rule REGEX=FAULT, repeatable) answer every request whose
"METHOD PATH [copy-source]" (URL-decoded; the copy source of a server-side copy) matches
REGEX with a permanent fault instead, whatever --kind and --rate say:

  forbidden  403 AccessDenied            archived   403 InvalidObjectState
  nosuchkey  404 NoSuchKey (the object vanished after it was listed)
  kms        400 KMS.DisabledException
  kmsdenied  403 AccessDenied with the message AWS S3 gives when the caller may not use
             the object's KMS key ("The ciphertext refers to a customer master key ...")
  badkey     400 KeyTooLongError "Your key is too long." (AWS's answer for a key over
             1024 bytes: a key the target cannot hold; match it on the target path)
  baddigest  400 BadDigest (AWS's answer to a body that does not match the checksum sent
             with it; match it on the target path)
  notimpl    501 NotImplemented (a store's answer to a header or encoding it does not
             have, e.g. aws-chunked trailers)

Counts also hold "by_op": requests per S3 operation (list, head, get, put, copy,
delete, other), so a test can prove what a migration asked for.

  hang       read the request, then never answer (a server that accepts and stalls);
             the connection stays open until the client gives up
  refuse     reset every connection at once, before reading a request (an endpoint that
             is unreachable; the listening port stays open); a kept-alive connection is
             reset when its next request arrives
  badgateway answer 502 Bad Gateway with a non-S3 body (a load balancer whose backends
             are down; request not forwarded)
  errorpage  answer 500 Internal Server Error with an HTML page (a server's own crash
             page, as moto's werkzeug sends; request not forwarded)

--aws-part-checksums makes multipart uploads created with x-amz-checksum-algorithm
behave as AWS S3 documents, where S3Proxy and moto do not:
  - an UploadPartCopy result carries the part's checksum (<ChecksumSHA256> etc. in
    CopyPartResult): the proxy reads the copied range from upstream (a GET signed by
    curl --aws-sigv4 with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and computes it
    (CRC32, CRC32C, CRC64NVME, SHA1, SHA256);
  - CompleteMultipartUpload must carry that checksum for every part, else 400
    InvalidRequest ("The upload was created using a crc32 checksum. The complete request
    must include the checksum for each part. It was missing for part 1 in the
    request."), and a value other than the part's is 400 InvalidPart (neither forwarded).
  - an UploadPart of such an upload must carry the part's checksum, in a header
    (x-amz-checksum-<algo>) or as the trailer of an aws-chunked body (x-amz-trailer,
    what the AWS SDKs send): none is 400 InvalidRequest, a value other than the one
    computed over the part's bytes 400 BadDigest (neither forwarded; computed for CRC32,
    CRC32C, CRC64NVME, SHA1, SHA256). The value is the one Complete must then list for
    the part.
AWS requires part checksums of COMPOSITE uploads; the proxy asks them of every upload
with an algorithm (ferry sends them for all). Counts hold "complete_refused",
"part_refused" and "part_checksum_ok" (parts whose checksum was checked and matched).

--mode-file PATH switches the kind and rate while the proxy runs: before each request
the file, if it exists, is read as "KIND [RATE]" (rate defaults to 1.0), so a test can
start an outage and end it without restarting the proxy (port and connections kept).

Every other request and response passes through byte for byte: the request line and
every header (Host included, which SigV4 signs) are sent upstream unchanged. Only
`Expect: 100-continue` is answered by the proxy itself (and upstream 1xx responses are
dropped). Choices are deterministic for a given --seed and request order.

The listening port is printed on stdout ("PORT <n>"); counts are written as JSON to
--counts after every request: {"requests": N, "injected": N, "kind": "...",
"max_concurrent": most requests served at once, "lists": ListObjectsV2 requests,
"lists_overlapped": those that arrived while another request was being served}.
Python 3 standard library only.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib

try:
    import crc32c  # what moto uses too; a table below when it is missing
except ImportError:
    crc32c = None


def _crc_table(poly):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc_table(0x82F63B78)
_CRC64NVME = _crc_table(0x9A6C9329AC4BC9B5)


def crc_reflected(data, table, ones):
    """A reflected CRC with all-ones start and final xor (CRC32C, CRC64NVME), byte by
    byte: about a second per 5 MiB part, enough for a test's few parts."""
    c = ones
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ ones

MAX_HEADER = 64 * 1024
KINDS = ["none", "slowdown", "reset", "latency", "truncate", "badlen", "forbidden", "hang",
         "badgateway", "errorpage", "refuse", "throttle"]

RULE_FAULTS = {
    "forbidden": (403, "Forbidden", "AccessDenied", "Access Denied (faultproxy rule)"),
    "archived": (403, "Forbidden", "InvalidObjectState",
                 "The operation is not valid for the object's storage class"),
    "nosuchkey": (404, "Not Found", "NoSuchKey", "The specified key does not exist."),
    "kms": (400, "Bad Request", "KMS.DisabledException", "The KMS key is disabled"),
    "kmsdenied": (403, "Forbidden", "AccessDenied",
                  "The ciphertext refers to a customer master key that does not exist, "
                  "does not exist in this region, or you are not allowed to access."),
    "badkey": (400, "Bad Request", "KeyTooLongError", "Your key is too long."),
    "notimpl": (501, "Not Implemented", "NotImplemented",
                "A header you provided implies functionality that is not implemented"),
    "baddigest": (400, "Bad Request", "BadDigest",
                  "The Content-MD5 or checksum value that you specified did not match what "
                  "the server received."),
}


def op_of(method, target, hdrs):
    path, _, query = target.partition("?")
    if method == "GET" and ("list-type" in query or path.count("/") <= 1):
        return "list"
    if method == "PUT" and b"x-amz-copy-source" in hdrs:
        return "copy"
    return {"HEAD": "head", "GET": "get", "PUT": "put", "DELETE": "delete"}.get(method, "other")


class Counts:
    def __init__(self, path, kind):
        self.lock = threading.Lock()
        self.path = path
        self.data = {"kind": kind, "requests": 0, "injected": 0, "by_op": {},
                     "max_concurrent": 0, "lists": 0, "lists_overlapped": 0}
        self.active = 0  # requests being served now (forwarded, not yet answered)

    def enter(self, limit, is_list):
        """A request arrives: returns False if it must be refused (throttle)."""
        with self.lock:
            if is_list:
                self.data["lists"] += 1
                if self.active > 0:
                    self.data["lists_overlapped"] += 1
            if limit and self.active >= limit:
                return False
            self.active += 1
            self.data["max_concurrent"] = max(self.data["max_concurrent"], self.active)
            return True

    def leave(self):
        with self.lock:
            self.active -= 1

    def note(self, name):
        """Counts one more of `name` (written with the next bump)."""
        with self.lock:
            self.data[name] = self.data.get(name, 0) + 1

    def bump(self, injected, op="other"):
        with self.lock:
            self.data["requests"] += 1
            self.data["by_op"][op] = self.data["by_op"].get(op, 0) + 1
            if injected:
                self.data["injected"] += 1
            if self.path:
                tmp = self.path + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(self.data, f)
                os.replace(tmp, self.path)


class Conn:
    """Buffered reader over a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEADER:
                raise ValueError("header too large")
            self._fill()
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_chunked(self):
        """Raw bytes of a chunked body, trailers included."""
        out = b""
        while True:
            line = self.read_line()
            out += line
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    t = self.read_line()
                    out += t
                    if t == b"\r\n":
                        return out
            out += self.read_exact(size + 2)

    def read_to_eof(self):
        out = self.buf
        self.buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return out
            out += chunk


def headers_of(head):
    lines = head.split(b"\r\n")
    hdrs = {}
    for ln in lines[1:]:
        if b":" in ln:
            k, v = ln.split(b":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs


def read_body(conn, hdrs, is_request, no_body=False):
    if no_body:
        return b"", True
    if b"chunked" in hdrs.get(b"transfer-encoding", b"").lower():
        return conn.read_chunked(), True
    if b"content-length" in hdrs:
        return conn.read_exact(int(hdrs[b"content-length"])), True
    if is_request:
        return b"", True
    return conn.read_to_eof(), False  # delimited by close


def xml_error(status, reason, code, message):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message><RequestId>faultproxy</RequestId></Error>'
            % (code, message)).encode()
    head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
            "Content-Length: %d\r\nx-amz-request-id: faultproxy\r\n\r\n"
            % (status, reason, len(body))).encode()
    return head + body


def rst_close(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Proxy:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.rng_lock = threading.Lock()
        self.counts = Counts(args.counts, args.kind)
        self.upstream = (args.upstream_host, args.upstream_port)
        self.rules = []
        self.upload_algos = {}  # upload id -> checksum algorithm (--aws-part-checksums)
        self.part_sums = {}     # (upload id, part number) -> the part's checksum
        self.upload_lock = threading.Lock()
        for r in args.rule or []:
            pat, _, fault = r.rpartition("=")
            if fault not in RULE_FAULTS or not pat:
                raise SystemExit("bad --rule %r (REGEX=FAULT, FAULT one of %s)"
                                 % (r, ", ".join(RULE_FAULTS)))
            self.rules.append((re.compile(pat), fault))

    def rule_for(self, method, target, hdrs):
        subject = "%s %s" % (method, urllib.parse.unquote(target.split("?", 1)[0]))
        if b"x-amz-copy-source" in hdrs:
            subject += " " + urllib.parse.unquote(hdrs[b"x-amz-copy-source"].decode("latin-1"))
        for pat, fault in self.rules:
            if pat.search(subject):
                return fault
        return None

    @staticmethod
    def query_of(target):
        q = target.split("?", 1)[1] if "?" in target else ""
        return urllib.parse.parse_qs(q, keep_blank_values=True)

    def note_upload(self, method, target, hdrs, status, rbody):
        """--aws-part-checksums: remembers the algorithm of an upload created with one."""
        algo = hdrs.get(b"x-amz-checksum-algorithm")
        if not (self.args.aws_part_checksums and method == b"POST" and algo and status == 200
                and "uploads" in self.query_of(target)):
            return
        m = re.search(rb"<UploadId>([^<]+)</UploadId>", rbody)
        if m:
            with self.upload_lock:
                self.upload_algos[m.group(1).decode("latin-1")] = algo.decode("latin-1").upper()

    def fetch_range(self, source, rng):
        """The bytes of a copy source ("bucket/key", URL-encoded) and range, from upstream."""
        url = "http://%s:%d/%s" % (self.upstream[0], self.upstream[1], source.lstrip("/"))
        cmd = ["curl", "-sf", "--aws-sigv4",
               "aws:amz:%s:s3" % os.environ.get("AWS_REGION", "us-east-1"),
               "--user", "%s:%s" % (os.environ.get("AWS_ACCESS_KEY_ID", ""),
                                    os.environ.get("AWS_SECRET_ACCESS_KEY", "")),
               "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url]
        if rng:
            cmd[1:1] = ["-H", "Range: " + rng]
        return subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout

    @staticmethod
    def checksum(algo, data):
        if algo == "CRC32":
            return base64.b64encode(struct.pack(">I", zlib.crc32(data))).decode()
        if algo == "CRC32C":
            v = crc32c.crc32c(data) if crc32c else crc_reflected(data, _CRC32C, 0xFFFFFFFF)
            return base64.b64encode(struct.pack(">I", v)).decode()
        if algo == "CRC64NVME":
            v = crc_reflected(data, _CRC64NVME, 0xFFFFFFFFFFFFFFFF)
            return base64.b64encode(struct.pack(">Q", v)).decode()
        if algo in ("SHA1", "SHA256"):
            return base64.b64encode(hashlib.new(algo.lower(), data).digest()).decode()
        return None

    def part_result(self, method, target, hdrs, status, rhead, rbody):
        """--aws-part-checksums: an UploadPartCopy result with the part's checksum in it."""
        q = self.query_of(target)
        src = hdrs.get(b"x-amz-copy-source")
        if not (self.args.aws_part_checksums and method == b"PUT" and status == 200 and src
                and "uploadId" in q and "partNumber" in q and b"</CopyPartResult>" in rbody):
            return rhead, rbody
        upload, part = q["uploadId"][0], int(q["partNumber"][0])
        with self.upload_lock:
            algo = self.upload_algos.get(upload)
        rng = hdrs.get(b"x-amz-copy-source-range", b"").decode("latin-1")
        value = algo and self.checksum(algo, self.fetch_range(src.decode("latin-1"), rng))
        if not value:
            return rhead, rbody
        with self.upload_lock:
            self.part_sums[(upload, part)] = value
        tag = ("<Checksum%s>%s</Checksum%s>" % (algo, value, algo)).encode()
        rbody = rbody.replace(b"</CopyPartResult>", tag + b"</CopyPartResult>", 1)
        lines = [b"Content-Length: %d" % len(rbody) if ln.lower().startswith(b"content-length:")
                 else ln for ln in rhead.split(b"\r\n")]
        return b"\r\n".join(lines), rbody

    @staticmethod
    def aws_chunked(body):
        """(data, {trailer name: value}) of an aws-chunked body; ValueError if malformed."""
        data, pos = bytearray(), 0
        while True:
            eol = body.index(b"\r\n", pos)
            size = int(body[pos:eol].split(b";", 1)[0], 16)
            pos = eol + 2
            if size == 0:
                break
            data += body[pos:pos + size]
            if body[pos + size:pos + size + 2] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            pos += size + 2
        trailers = {}
        for line in body[pos:].split(b"\r\n"):
            if line:
                name, _, value = line.partition(b":")
                trailers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return bytes(data), trailers

    def part_refusal(self, method, target, hdrs, body):
        """--aws-part-checksums: AWS's 400 for an UploadPart without its right checksum."""
        if not self.args.aws_part_checksums or method != b"PUT" or b"x-amz-copy-source" in hdrs:
            return None
        q = self.query_of(target)
        if "uploadId" not in q or "partNumber" not in q:
            return None
        upload, part = q["uploadId"][0], int(q["partNumber"][0])
        with self.upload_lock:
            algo = self.upload_algos.get(upload)
        if not algo:
            return None
        name = "x-amz-checksum-" + algo.lower()
        data, sent = body, hdrs.get(name.encode(), b"").decode("latin-1") or None
        if b"aws-chunked" in hdrs.get(b"content-encoding", b"").lower():
            try:
                data, trailers = self.aws_chunked(body)
            except ValueError:
                return xml_error(400, "Bad Request", "IncompleteBody",
                                 "The request body is not valid aws-chunked encoding.")
            sent = sent or trailers.get(name)
        if not sent:
            self.counts.note("part_refused")
            return xml_error(400, "Bad Request", "InvalidRequest",
                             "The upload was created using a %s checksum. The part request "
                             "must include the part's checksum (part %d)."
                             % (algo.lower(), part))
        want = self.checksum(algo, data)
        if want is not None and want != sent:
            self.counts.note("part_refused")
            return xml_error(400, "Bad Request", "BadDigest",
                             "The %s you specified did not match the calculated checksum."
                             % algo)
        if want is not None:
            self.counts.note("part_checksum_ok")
        with self.upload_lock:
            self.part_sums[(upload, part)] = sent
        return None

    def complete_refusal(self, method, target, body):
        """--aws-part-checksums: AWS's 400 for a Complete lacking a part's checksum, or None."""
        if not self.args.aws_part_checksums or method != b"POST":
            return None
        ids = self.query_of(target).get("uploadId")
        with self.upload_lock:
            algo = self.upload_algos.get(ids[0]) if ids else None
        if not algo:
            return None
        for part in re.findall(rb"<Part>(.*?)</Part>", body, re.S):
            n = re.search(rb"<PartNumber>\s*(\d+)", part)
            n = int(n.group(1)) if n else 0
            sent = re.search(rb"<Checksum" + algo.encode() + rb">([^<]*)<", part)
            if not sent:
                return xml_error(400, "Bad Request", "InvalidRequest",
                                 "The upload was created using a %s checksum. The complete "
                                 "request must include the checksum for each part. It was "
                                 "missing for part %d in the request." % (algo.lower(), n))
            with self.upload_lock:
                want = self.part_sums.get((ids[0], n))
            if want is not None and sent.group(1).decode("latin-1") != want:
                return xml_error(400, "Bad Request", "InvalidPart",
                                 "One or more of the specified parts could not be found. The "
                                 "part may not have been uploaded, or the specified entity "
                                 "tag may not match the part's entity tag.")
        return None

    def mode(self):
        """(kind, rate): from --mode-file when it exists, else the command line."""
        if self.args.mode_file:
            try:
                with open(self.args.mode_file) as f:
                    parts = f.read().split()
                if parts and parts[0] in KINDS:
                    return parts[0], float(parts[1]) if len(parts) > 1 else 1.0
            except (OSError, ValueError):
                pass
        return self.args.kind, self.args.rate

    def decide(self):
        kind, rate = self.mode()
        with self.rng_lock:
            return kind if kind != "none" and self.rng.random() < rate else "none"

    def handle(self, csock):
        client = Conn(csock)
        up = None
        try:
            while True:
                if self.mode()[0] == "refuse":
                    self.counts.bump(True)
                    rst_close(csock)
                    return
                try:
                    head = client.read_head()
                except EOFError:
                    return
                if self.mode()[0] == "refuse":
                    # The mode changed while this kept-alive connection waited for its
                    # next request: that request must not get through either.
                    self.counts.bump(True)
                    rst_close(csock)
                    return
                reqline, hdrs = headers_of(head)
                method = reqline.split(b" ", 1)[0].upper()
                if b"100-continue" in hdrs.get(b"expect", b"").lower():
                    csock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, _ = read_body(client, hdrs, True)
                parts = reqline.decode("latin-1").split(" ")
                target = parts[1] if len(parts) > 1 else "/"
                mname = method.decode("latin-1")
                is_list = mname == "GET" and "list-type=2" in target
                mode_kind = self.mode()[0]
                limit = self.args.max_concurrent if mode_kind == "throttle" else 0
                admitted = self.counts.enter(limit, is_list)
                try:
                    # A canned answer (not forwarded): a --rule, or AWS's refusal of a
                    # part or a Complete without its checksums (logged as "partsums").
                    rule = self.rule_for(mname, target, hdrs)
                    canned = xml_error(*RULE_FAULTS[rule]) if rule else None
                    refusal = self.complete_refusal(method, target, body)
                    if refusal:
                        self.counts.note("complete_refused")
                    else:
                        refusal = self.part_refusal(method, target, hdrs, body)
                    if refusal:
                        rule, canned = "partsums", refusal
                    if mode_kind == "throttle":
                        inject = rule is not None or not admitted
                        kind = rule or ("slowdown" if inject else "none")
                    else:
                        decided = self.decide()
                        inject = rule is not None or decided != "none"
                        kind = rule or decided
                    self.counts.bump(inject, op_of(mname, target, hdrs))
                    if inject and self.args.log:
                        with self.counts.lock, open(self.args.log, "a") as f:
                            f.write("%s %s\n" % (kind, reqline.decode("latin-1")))
                    if rule:
                        csock.sendall(canned)
                        done = False
                    else:
                        up, done = self.serve_one(csock, kind, head, body, hdrs, method, target,
                                                  up)
                finally:
                    if admitted:
                        self.counts.leave()
                if done:
                    return
        except (EOFError, OSError, ValueError):
            return
        finally:
            try:
                csock.close()
            except OSError:
                pass
            if up is not None:
                up.sock.close()

    def serve_one(self, csock, kind, head, body, hdrs, method, target, up):
        """Answers one request; returns (upstream conn, True if the client conn is done)."""
        if kind == "slowdown":
            csock.sendall(xml_error(503, "Slow Down", "SlowDown",
                                    "Please reduce your request rate."))
            return up, False
        if kind == "forbidden":
            csock.sendall(xml_error(403, "Forbidden", "AccessDenied",
                                    "Access Denied (faultproxy)"))
            return up, False
        if kind == "badgateway":
            page = b"<html><body>502 Bad Gateway</body></html>"
            csock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(page) + page)
            return up, False
        if kind == "errorpage":
            page = b"<!doctype html><title>500 Internal Server Error</title><h1>Internal Server Error</h1>"
            csock.sendall(b"HTTP/1.1 500 INTERNAL SERVER ERROR\r\nContent-Type: text/html; charset=utf-8\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(page) + page)
            return up, False
        if kind == "hang":
            # Never answer; done when the client closes (it timed out).
            while csock.recv(65536):
                pass
            return up, True
        if kind == "latency":
            time.sleep(self.args.latency_ms / 1000.0)
        if self.args.delay_ms:
            time.sleep(self.args.delay_ms / 1000.0)
        if up is None:
            up = Conn(socket.create_connection(self.upstream, timeout=60))
        up.sock.sendall(head + body)
        while True:
            rhead = up.read_head()
            status = int(rhead.split(b" ", 2)[1])
            if 100 <= status < 200:
                continue  # 100 Continue already answered by us
            break
        _, rh = headers_of(rhead)
        no_body = method == b"HEAD" or status in (204, 304)
        rbody, delimited = read_body(up, rh, False, no_body)
        self.note_upload(method, target, hdrs, status, rbody)
        rhead, rbody = self.part_result(method, target, hdrs, status, rhead, rbody)
        if not delimited:
            up.sock.close()
            up = None
        full = rhead + rbody
        if kind == "reset":
            cut = len(rhead) + len(rbody) // 2 if rbody else max(1, len(rhead) // 2)
            csock.sendall(full[:cut])
            rst_close(csock)
            return up, True
        if kind == "truncate" and rbody:
            csock.sendall(rhead + rbody[: len(rbody) // 2])
            csock.shutdown(socket.SHUT_RDWR)
            return up, True
        if kind == "truncate":  # no body: cut the headers
            csock.sendall(rhead[: len(rhead) // 2])
            csock.shutdown(socket.SHUT_RDWR)
            return up, True
        if kind == "badlen":
            if b"content-length" in rh and not no_body:
                old = b"content-length: " + rh[b"content-length"]
                new_len = int(rh[b"content-length"]) + 17
                lines = rhead.split(b"\r\n")
                lines = [(b"Content-Length: %d" % new_len)
                         if ln.lower().replace(b" ", b"") == old.replace(b" ", b"") else ln
                         for ln in lines]
                csock.sendall(b"\r\n".join(lines) + rbody)
            else:  # nothing to lie about: declare a body that never comes
                csock.sendall(rhead[:-2] + b"Content-Length: 17\r\n\r\n")
            csock.shutdown(socket.SHUT_RDWR)
            return up, True
        csock.sendall(full)
        if hdrs.get(b"connection", b"").lower() == b"close" or \
                rh.get(b"connection", b"").lower() == b"close" or not delimited:
            return up, True
        return up, False

    def serve(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.args.port))
        ls.listen(128)
        print("PORT %d" % ls.getsockname()[1], flush=True)
        if self.args.port_file:
            with open(self.args.port_file + ".tmp", "w") as f:
                f.write("%d\n" % ls.getsockname()[1])
            os.replace(self.args.port_file + ".tmp", self.args.port_file)
        while True:
            c, _ = ls.accept()
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="http://HOST:PORT of the S3 server")
    p.add_argument("--kind", default="none", choices=KINDS)
    p.add_argument("--max-concurrent", type=int, default=8,
                   help="throttle: requests served at once before 503 SlowDown")
    p.add_argument("--delay-ms", type=int, default=0,
                   help="added latency for every forwarded request")
    p.add_argument("--rate", type=float, default=0.05, help="fraction of requests (0..1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=int, default=200)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log", help="append one line per injected fault (kind, request line)")
    p.add_argument("--counts", help="JSON counts file, rewritten after every request")
    p.add_argument("--rule", action="append",
                   help="REGEX=FAULT: answer matching requests with FAULT (repeatable)")
    p.add_argument("--aws-part-checksums", action="store_true",
                   help="refuse a Complete without each part's checksum, as AWS does")
    p.add_argument("--mode-file", help='"KIND [RATE]" overriding --kind/--rate while it exists')
    a = p.parse_args()
    u = a.upstream
    if u.startswith("http://"):
        u = u[len("http://"):]
    u = u.rstrip("/")
    host, _, port = u.rpartition(":")
    a.upstream_host, a.upstream_port = host, int(port)
    Proxy(a).serve()


if __name__ == "__main__":
    sys.exit(main())
