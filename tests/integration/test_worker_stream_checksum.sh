#!/usr/bin/env bash
# Across endpoints an object is streamed (GET -> PutObject), and the stream keeps the
# source's additional checksum as CopyObject does: the GET asks for it
# (x-amz-checksum-mode: ENABLED) and the PUT sends it (x-amz-checksum-<algo>, so the
# target checks the bytes it got against the source's checksum and keeps the algorithm).
# Sources on moto with CRC32, CRC32C, SHA-256 and no checksum, streamed to
#  - moto behind faultproxy (another endpoint for the worker, so it streams): the target
#    has each source's checksum, equal to it; none for none;
#  - S3Proxy (the stack's second endpoint): it keeps a checksum a PUT sends;
#  - moto again with copy.stream_checksums=false: no checksum on the target.
# Each copy is verified (state done, exact counts).
# Streams in parts (UploadPart, above copy.multipart_threshold_mb): the upload is created
# with the source's algorithm, each part sends its checksum as an aws-chunked trailer and
# CompleteMultipartUpload lists them; CRC32 and CRC32C objects get the source's
# full-object checksum back, SHA-256 a composite one. Checked against moto behind
# faultproxy --aws-part-checksums (which refuses a part or a Complete without the right
# checksum, as AWS documents) and against S3Proxy (which accepts the trailers, and
# computes the full-object checksum itself).
# moto only, whatever FERRY_TEST_S3 says: S3Proxy computes no checksum for its objects.
export FERRY_TEST_S3=moto
source "$(dirname "$0")/lib.sh"
[[ -n "${FERRY_S3_ENDPOINT_2:-}" ]] || fail "the stack has no second S3 endpoint (FERRY_STACK_S3_SECOND=1)"

bucket_pair stck
ALGOS=(CRC32 CRC32C SHA256 none)
bytes=0
for algo in "${ALGOS[@]}"; do
    b=$(s3_put_random "$FERRY_S3_ENDPOINT/$SRC_B/data/$algo" $((40000 + RANDOM)) "$algo") || fail "seeding data/$algo"
    bytes=$((bytes + b))
done
for algo in "${ALGOS[@]}"; do s3_head_sums "$FERRY_S3_ENDPOINT/$SRC_B/data/$algo" >"$WORK/src-$algo.txt"; done
# sum_of FILE ALGO -> the value of x-amz-checksum-<algo> in FILE
sum_of() { sed -n "s/^x-amz-checksum-${2,,}: //p" "$1"; }
for algo in CRC32 CRC32C SHA256; do
    [[ -n "$(sum_of "$WORK/src-$algo.txt" "$algo")" ]] || fail "source data/$algo has no $algo: $(tr '\n' ';' <"$WORK/src-$algo.txt")"
done

# Multipart sources: 3 parts of 5 MiB each.
BIG=(CRC32 CRC32C SHA256)
big_bytes=0
for algo in "${BIG[@]}"; do
    b=$(s3_put_random "$FERRY_S3_ENDPOINT/$SRC_B/big/$algo" $((11 * 1048576 + RANDOM)) "$algo") || fail "seeding big/$algo"
    big_bytes=$((big_bytes + b))
    s3_head_sums "$FERRY_S3_ENDPOINT/$SRC_B/big/$algo" >"$WORK/src-big-$algo.txt"
done
MP=(-X copy.multipart_threshold_mb=5 -X copy.multipart_part_size_mb=5)

echo none >"$WORK/mode"
start_faultproxy "$FERRY_S3_ENDPOINT" --aws-part-checksums
PROXY_PID=${PIDS[-1]}
S2=(AWS_ACCESS_KEY_ID="$FERRY_S3_ACCESS_KEY_ID_2" AWS_SECRET_ACCESS_KEY="$FERRY_S3_SECRET_ACCESS_KEY_2")
env "${S2[@]}" FERRY_S3_ENDPOINT="$FERRY_S3_ENDPOINT_2" "$S3TOOL" mb "$DST_B" >/dev/null || fail "creating $DST_B on the second endpoint"

# run NAME TARGET_ENDPOINT TARGET_KEY TARGET_SECRET PREFIX [worker args...]: one dataset
# $FROM (data/ by default) -> PREFIX on TARGET, waited for and checked exactly.
FROM=data N=4
run() {
    local name=$1 ep=$2 key=$3 secret=$4 prefix=$5 ds; shift 5
    ds=stck-$name-$RANDOM
    LAST_DS=$ds
    publish "$ds" "s3://$SRC_B/$FROM/" "s3://$DST_B/$prefix"
    FERRY_S3_TARGET_ACCESS_KEY_ID=$key FERRY_S3_TARGET_SECRET_ACCESS_KEY=$secret \
        start_worker "$name" -X s3.target.endpoint="$ep" "$@"
    wait_until 120 status_is "$ds" done ||
        { tail -20 "$WORK/$name.log" >&2; fail "$ds: not done: $(state_field "$ds" status), $(state_field "$ds" last_error)"; }
    S3TOOL_DST_ENDPOINT=$ep S3TOOL_DST_ACCESS_KEY_ID=$key S3TOOL_DST_SECRET_ACCESS_KEY=$secret \
        assert_done_exact "$ds" "$N" "$bytes" "s3://$SRC_B/$FROM/" "s3://$DST_B/$prefix"
    grep -q '"level":"error"' "$WORK/$name.log" && { grep '"level":"error"' "$WORK/$name.log" | head -3 >&2; fail "$ds: errors logged"; }
    kill -TERM "$LAST_PID" 2>/dev/null; wait "$LAST_PID" 2>/dev/null || true
}
# kept URL_BASE ENV... : each source checksum is on the target, equal; none for none
kept() {
    local base=$1; shift
    for algo in CRC32 CRC32C SHA256; do
        (export "$@"; s3_head_sums "$base/$algo") >"$WORK/dst.txt" || fail "HEAD $base/$algo"
        [[ "$(sum_of "$WORK/dst.txt" "$algo")" == "$(sum_of "$WORK/src-$algo.txt" "$algo")" ]] ||
            fail "$base/$algo: target '$(tr '\n' ';' <"$WORK/dst.txt")', source $algo '$(sum_of "$WORK/src-$algo.txt" "$algo")'"
    done
    (export "$@"; s3_head_sums "$base/none") >"$WORK/dst.txt"
    grep -q '^x-amz-checksum-\(crc\|sha\)' "$WORK/dst.txt" && fail "$base/none got a checksum: $(tr '\n' ';' <"$WORK/dst.txt")"
    return 0
}

# $DST_B exists on both stores: moto (bucket_pair) and S3Proxy (above).
run m1 "$FAULTPROXY_EP" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" copy/
kept "$FERRY_S3_ENDPOINT/$DST_B/copy" AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
note "ok: moto -> moto (streamed): CRC32, CRC32C and SHA-256 kept, equal to the source's"

run p1 "$FERRY_S3_ENDPOINT_2" "$FERRY_S3_ACCESS_KEY_ID_2" "$FERRY_S3_SECRET_ACCESS_KEY_2" copy/
kept "$FERRY_S3_ENDPOINT_2/$DST_B/copy" "${S2[@]}"
note "ok: moto -> S3Proxy (streamed): CRC32, CRC32C and SHA-256 kept, equal to the source's"

run m2 "$FAULTPROXY_EP" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" off/ -X copy.stream_checksums=false
for algo in CRC32 CRC32C SHA256; do
    s3_head_sums "$FERRY_S3_ENDPOINT/$DST_B/off/$algo" >"$WORK/dst.txt"
    [[ -z "$(sum_of "$WORK/dst.txt" "$algo")" ]] || fail "off/$algo has a $algo with copy.stream_checksums=false: $(tr '\n' ';' <"$WORK/dst.txt")"
done
note "ok: with copy.stream_checksums=false the target has none"

# Streams in parts. kept_big URL_BASE ENV...: CRC32 and CRC32C equal to the source's
# (full-object), SHA-256 composite over the 3 parts.
kept_big() {
    local base=$1 v; shift
    for algo in CRC32 CRC32C; do
        (export "$@"; s3_head_sums "$base/$algo") >"$WORK/dst.txt" || fail "HEAD $base/$algo"
        [[ "$(sum_of "$WORK/dst.txt" "$algo")" == "$(sum_of "$WORK/src-big-$algo.txt" "$algo")" ]] ||
            fail "$base/$algo: target '$(tr '\n' ';' <"$WORK/dst.txt")', source $algo '$(sum_of "$WORK/src-big-$algo.txt" "$algo")'"
    done
    (export "$@"; s3_head_sums "$base/SHA256") >"$WORK/dst.txt" || fail "HEAD $base/SHA256"
    v=$(sum_of "$WORK/dst.txt" SHA256)
    # composite: "<value>-3", or the value and x-amz-checksum-type COMPOSITE (moto)
    [[ -n "$v" && ( "$v" == *-3 || -n "$(sed -n 's/^x-amz-checksum-type: COMPOSITE$/y/p' "$WORK/dst.txt")" ) ]] ||
        fail "$base/SHA256: no composite SHA-256: '$(tr '\n' ';' <"$WORK/dst.txt")'"
}
small_bytes=$bytes
FROM=big N=3 bytes=$big_bytes
run mm "$FAULTPROXY_EP" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" big/ "${MP[@]}"
kept_big "$FERRY_S3_ENDPOINT/$DST_B/big" AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
counts=$(cat "$WORK/counts.json")
ok=$(jq -r '.part_checksum_ok // 0' <<<"$counts")
[[ "$(jq -r '(.part_refused // 0) + (.complete_refused // 0)' <<<"$counts")" == 0 ]] || fail "the proxy refused parts or a Complete: $counts"
(( ok == 9 )) || fail "the proxy checked $ok part checksums, want the 9 parts of CRC32, CRC32C and SHA-256: $counts"
verify=$(state_field "$LAST_DS" verify)
[[ ",$verify," == *",checksum-crc32,"* && ",$verify," == *",checksum-crc32c,"* ]] ||
    fail "state verify '$verify': the CRC32/CRC32C streams were not verified by their checksums"
note "ok: moto -> moto in parts: $ok part checksums checked by the proxy, CRC32/CRC32C equal to the source's, SHA-256 composite; verify $verify"

run mp "$FERRY_S3_ENDPOINT_2" "$FERRY_S3_ACCESS_KEY_ID_2" "$FERRY_S3_SECRET_ACCESS_KEY_2" big/ "${MP[@]}"
kept_big "$FERRY_S3_ENDPOINT_2/$DST_B/big" "${S2[@]}"
note "ok: moto -> S3Proxy in parts: trailers accepted, CRC32/CRC32C equal to the source's, SHA-256 composite"
FROM=data N=4 bytes=$small_bytes

# CRC64NVME, the checksum AWS gives every new object by default (moto cannot compute it
# without awscrt; S3Proxy keeps one a PUT sends and checks it, computes the full-object
# value of a multipart upload, but does not check trailers): S3Proxy -> faultproxy
# --aws-part-checksums -> S3Proxy (which checks each part's trailer), one object in 3 parts
# and one in a single PUT. The target's CRC64NVME equals the source's, and verifies the copy.
nvme_bytes=0
for spec in big:$((11 * 1048576 + RANDOM)) small:$((40000 + RANDOM)); do
    name=${spec%%:*} size=${spec##*:}
    head -c "$size" /dev/urandom >"$WORK/body"
    "$S3TOOL" sum CRC64NVME "$WORK/body" >"$WORK/nvme-$name.sum" || fail "CRC64NVME of nvme-src/$name"
    (export "${S2[@]}"; s3_curl -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
        -H "x-amz-checksum-crc64nvme: $(cat "$WORK/nvme-$name.sum")" --data-binary "@$WORK/body" \
        "$FERRY_S3_ENDPOINT_2/$DST_B/nvme-src/$name") || fail "seeding nvme-src/$name on S3Proxy"
    nvme_bytes=$((nvme_bytes + size))
done
DSN=stck-nvme-$RANDOM
python3 "$SRC/tests/tools/faultproxy.py" --upstream "$FERRY_S3_ENDPOINT_2" --aws-part-checksums \
    --port-file "$WORK/nvme.port" --counts "$WORK/nvme-counts.json" >"$WORK/nvme-proxy.out" 2>&1 &
PIDS+=("$!")
wait_until 60 test -s "$WORK/nvme.port" || fail "faultproxy did not start: $(cat "$WORK/nvme-proxy.out")"
publish "$DSN" "s3://$DST_B/nvme-src/" "s3://$DST_B/nvme/"
AWS_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 AWS_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 \
FERRY_S3_TARGET_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 FERRY_S3_TARGET_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 \
    start_worker n1 -X s3.endpoint="$FERRY_S3_ENDPOINT_2" -X s3.target.endpoint="http://127.0.0.1:$(cat "$WORK/nvme.port")" "${MP[@]}"
wait_until 120 status_is "$DSN" done ||
    { tail -20 "$WORK/n1.log" >&2; fail "$DSN: not done: $(state_field "$DSN" status), $(state_field "$DSN" last_error)"; }
AWS_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 AWS_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 FERRY_S3_ENDPOINT=$FERRY_S3_ENDPOINT_2 \
    assert_done_exact "$DSN" 2 "$nvme_bytes" "s3://$DST_B/nvme-src/" "s3://$DST_B/nvme/"
for name in big small; do
    (export "${S2[@]}"; s3_head_sums "$FERRY_S3_ENDPOINT_2/$DST_B/nvme/$name") >"$WORK/dst.txt" || fail "HEAD nvme/$name"
    [[ "$(sum_of "$WORK/dst.txt" CRC64NVME)" == "$(cat "$WORK/nvme-$name.sum")" ]] ||
        fail "nvme/$name: target '$(tr '\n' ';' <"$WORK/dst.txt")', source CRC64NVME $(cat "$WORK/nvme-$name.sum")"
done
verify=$(state_field "$DSN" verify)
[[ ",$verify," == *",checksum-crc64nvme,"* ]] || fail "state verify '$verify': the CRC64NVME copies were not verified by their checksum"
counts=$(cat "$WORK/nvme-counts.json")
[[ "$(jq -r '(.part_refused // 0) + (.complete_refused // 0)' <<<"$counts")" == 0 && "$(jq -r '.part_checksum_ok // 0' <<<"$counts")" == 3 ]] ||
    fail "$DSN: want the 3 parts' CRC64NVME checked and nothing refused by the proxy: $counts"
kill -TERM "$LAST_PID" 2>/dev/null; wait "$LAST_PID" 2>/dev/null || true
note "ok: S3Proxy -> S3Proxy, CRC64NVME in parts (3 part checksums checked) and in one PUT: equal to the source's; verify $verify"

# A target that refuses one object's bytes (400 BadDigest, what AWS answers when they do
# not match the checksum sent with them; faultproxy on that key's PUT): that object
# fails on its own (class s3-bad-digest, in the report), the others are copied.
kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; rm -f "$WORK/port"
start_faultproxy "$FERRY_S3_ENDPOINT" --rule "^PUT /$DST_B/bad/CRC32C\$=baddigest" \
    --rule "^PUT /$DST_B/notrailer/[A-Z]=notimpl"
DS3=stck-bad-$RANDOM
publish "$DS3" "s3://$SRC_B/data/" "s3://$DST_B/bad/"
FERRY_S3_TARGET_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID FERRY_S3_TARGET_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    start_worker m3 -X s3.target.endpoint="$FAULTPROXY_EP"
wait_until 120 status_is "$DS3" failed_objects ||
    { tail -20 "$WORK/m3.log" >&2; fail "$DS3: not failed_objects: $(state_field "$DS3" status), $(state_field "$DS3" last_error)"; }
for f in "objects_copied 3" "objects_failed 1" "objects_total 4"; do
    set -- $f
    [[ "$(state_field "$DS3" "$1")" == "$2" ]] || fail "$DS3: state $1 is $(state_field "$DS3" "$1"), expected $2"
done
line=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$(state_field "$DS3" report)" data/CRC32C)
grep -q '"outcome":"failed","class":"s3-bad-digest","message":".*BadDigest' <<<"$line" || fail "$DS3: report line for data/CRC32C: $line"
note "ok: a BadDigest fails that object alone (s3-bad-digest), 3 others copied"
kill -TERM "$LAST_PID" 2>/dev/null; wait "$LAST_PID" 2>/dev/null || true

# A target without aws-chunked trailers answers each part with 501 NotImplemented
# (faultproxy rule on the objects, not on the write probe): the dataset fails at once,
# permanently (not an outage waited out), and its error names the setting that helps.
DS4=stck-notrailer-$RANDOM
publish "$DS4" "s3://$SRC_B/big/" "s3://$DST_B/notrailer/"
FERRY_S3_TARGET_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID FERRY_S3_TARGET_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    start_worker m4 -X s3.target.endpoint="$FAULTPROXY_EP" "${MP[@]}"
wait_until 60 status_is "$DS4" failed ||
    { tail -20 "$WORK/m4.log" >&2; fail "$DS4: not failed within 60 s: $(state_field "$DS4" status), $(state_field "$DS4" last_error)"; }
err=$(state_field "$DS4" last_error)
[[ "$err" == *"501 NotImplemented"* && "$err" == *"copy.stream_checksums=false"* ]] || fail "$DS4: last_error '$err'"
note "ok: parts refused with 501 NotImplemented: failed at once, error: $err"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log 2>/dev/null; then fail "sanitizer report"; fi
