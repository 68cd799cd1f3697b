#!/usr/bin/env bash
# Verification when ETags are not MD5s (DESIGN.md §9 "Verification"). tests/tools/kmsproxy.py
# sits in front of moto and behaves as AWS documents for SSE-KMS: every object says
# x-amz-server-side-encryption: aws:kms, its ETag is not the MD5 of its data, and a copy
# gets a new ETag. Through it:
#  1. a dataset with and without additional checksums (SHA-256 from the source's upload)
#     is migrated with no mismatch, and the state records how: checksum-sha256 for the
#     objects with a checksum, size for the others, never etag-md5 (no ETag is an MD5);
#  2. a copy the proxy corrupts with the same size (other bytes, as the store's checksum
#     of them shows) fails verification, and so does one with a byte more (size): both
#     datasets are dead-lettered with the mismatch, neither is ever marked done.
# Runs against both servers (FERRY_TEST_S3): each computes and keeps the additional
# checksums itself (S3Proxy too, across CopyObject), so each is a second opinion on the
# checksum path. The proxy rewrites signed headers (conditional ETags), which S3Proxy
# checks: there it signs every request again (--resign, the test's credentials from the
# environment); moto checks no signature.
source "$(dirname "$0")/lib.sh"
RESIGN=()
[[ $FERRY_TEST_S3 == moto ]] || RESIGN=(--resign)

start_proxy() { # NAME ARGS... -> sets PROXY_EP
    local name=$1 port=""; shift
    python3 "$SRC/tests/tools/kmsproxy.py" --upstream "$FERRY_S3_ENDPOINT" "${RESIGN[@]}" \
        --counts "$WORK/$name.json" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=("$!")
    wait_until 20 grep -q '^PORT ' "$WORK/$name.out" || fail "$name did not start: $(cat "$WORK/$name.err")"
    port=$(awk '/^PORT/{print $2}' "$WORK/$name.out")
    PROXY_EP="http://127.0.0.1:$port"
}

# --- 1. correct copies of SSE-KMS objects verify --------------------------------------
SRC_B=$(bucket kms-src); DST_B=$(bucket kms-dst)
"$S3TOOL" mb "$SRC_B" >/dev/null
"$S3TOOL" mb "$DST_B" >/dev/null
n=0 bytes=0
for i in 1 2 3 4 5; do
    body="checksummed object $i $(printf 'x%.0s' $(seq $((i * 7))))"
    S3TOOL_PUT_CHECKSUM=SHA256 "$S3TOOL" put "$SRC_B" "data/ck/obj-$i" "$body" || fail "seeding ck/obj-$i"
    n=$((n + 1)); bytes=$((bytes + ${#body}))
    body="plain object $i $(printf 'y%.0s' $(seq $((i * 5))))"
    "$S3TOOL" put "$SRC_B" "data/plain/obj-$i" "$body" || fail "seeding plain/obj-$i"
    n=$((n + 1)); bytes=$((bytes + ${#body}))
done
start_proxy kms
DS=kms-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
FERRY_S3_ENDPOINT=$PROXY_EP start_worker v1 -X log.level=debug
wait_until 120 status_is "$DS" done ||
    { cat "$WORK/v1.log" >&2; fail "SSE-KMS dataset not done: status $(state_field "$DS" status), error $(state_field "$DS" last_error)"; }
assert_done_exact "$DS" "$n" "$bytes" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
grep -q 'verify-mismatch\|differs from' "$WORK/v1.log" && fail "a correct copy was reported as a mismatch"
verify=$(state_field "$DS" verify)
[[ ",$verify," == *",checksum-sha256,"* ]] || fail "state verify is '$verify': no checksum-sha256"
[[ ",$verify," == *",size,"* ]] || fail "state verify is '$verify': objects without checksum not verified by size"
[[ ",$verify," != *",etag-md5,"* ]] || fail "state verify is '$verify': an SSE-KMS ETag was taken for an MD5"
rewritten=$(jq -r .etags_rewritten "$WORK/kms.json")
(( rewritten > 0 )) || fail "the proxy rewrote no ETag: the test did not test anything"
# Objects without a checksum only: nothing but the size can verify them.
DSP=kmsp-$RANDOM
publish "$DSP" "s3://$SRC_B/data/plain/" "s3://$DST_B/plaincopy/"
wait_until 120 status_is "$DSP" done ||
    { tail -30 "$WORK/v1.log" >&2; fail "$DSP not done: status $(state_field "$DSP" status), error $(state_field "$DSP" last_error)"; }
[[ "$(state_field "$DSP" verify)" == size ]] || fail "$DSP: state verify is '$(state_field "$DSP" verify)', not size"
# `ferry-worker status` says how each was verified, as text and as JSON.
"$WORKER" status >"$WORK/status.txt" || fail "status exited $?"
grep -q "^$DS .* $verify  *[^ ]" "$WORK/status.txt" || fail "status text lacks '$verify' for $DS: $(cat "$WORK/status.txt")"
grep -q "^$DSP .* size  *[^ ]" "$WORK/status.txt" || fail "status text lacks 'size' for $DSP: $(cat "$WORK/status.txt")"
grep -q '^DATASET .* VERIFIED BY ' "$WORK/status.txt" || fail "status text has no VERIFIED BY column"
"$WORKER" status --json | python3 -c '
import json, sys
got = {m["dataset"]: m.get("verify") for m in json.load(sys.stdin)}
want = {sys.argv[1]: sys.argv[2], sys.argv[3]: "size"}
bad = {d: (got.get(d), v) for d, v in want.items() if got.get(d) != v}
sys.exit("status --json verify (got, want): %r" % bad if bad else 0)' "$DS" "$verify" "$DSP" \
    || fail "status --json"
note "ok: $n SSE-KMS objects verified ($verify), $rewritten ETags rewritten by the proxy; $DSP by size; status shows both"

# --- 2. corrupted copies are still caught ---------------------------------------------
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
start_proxy bad --corrupt-body corrupt-body --corrupt-size corrupt-size
SRC2=$(bucket kmsb-src); DST2=$(bucket kmsb-dst)
"$S3TOOL" mb "$SRC2" >/dev/null
"$S3TOOL" mb "$DST2" >/dev/null
S3TOOL_PUT_CHECKSUM=SHA256 "$S3TOOL" put "$SRC2" "body/ok" "fine" || fail "seeding"
S3TOOL_PUT_CHECKSUM=SHA256 "$S3TOOL" put "$SRC2" "body/corrupt-body" "sixteen bytes!!!" || fail "seeding"
"$S3TOOL" put "$SRC2" "size/corrupt-size" "no checksum here" || fail "seeding"
DSB=kmsb-$RANDOM; DSS=kmss-$RANDOM
publish "$DSB" "s3://$SRC2/body/" "s3://$DST2/body/"
publish "$DSS" "s3://$SRC2/size/" "s3://$DST2/size/"
FERRY_S3_ENDPOINT=$PROXY_EP start_worker v2 -X retry.max_attempts=2
# Both datasets end in the DLQ once their (2) attempts are spent, each for its mismatch.
dlq_has() { [[ $(dlq_classes | wc -l) -eq 2 ]]; }
wait_until 180 dlq_has || { cat "$WORK/v2.log" >&2; fail "expected 2 DLQ records, got: $(dlq_classes)"; }
grep -q 'dead-lettered.*verify-mismatch: body/corrupt-body' "$WORK/v2.log" || fail "no DLQ for the checksum mismatch"
grep -q 'dead-lettered.*verify-mismatch: size/corrupt-size' "$WORK/v2.log" || fail "no DLQ for the size mismatch"
grep -q 'body/corrupt-body: target SHA256 checksum .* differs' "$WORK/v2.log" ||
    fail "the same-size corruption was not caught by its checksum"
grep -q 'size/corrupt-size: target size 17 differs from source size 16' "$WORK/v2.log" ||
    fail "the size corruption was not caught"
for d in "$DSB" "$DSS"; do
    [[ "$(state_field "$d" status)" != done ]] || fail "$d is done despite a corrupted copy"
done
(( $(jq -r .corrupted "$WORK/bad.json") >= 2 )) || fail "the proxy corrupted nothing"
note "ok: same-size (checksum) and size corruptions caught, nothing marked done"
