#!/usr/bin/env bash
# A multipart copy (UploadPartCopy) keeps the source's additional checksum algorithm, as
# a single CopyObject does, and verification never calls a correct copy a mismatch
# (DESIGN.md §9 "Verification"). Three objects above the multipart threshold, uploaded
# to moto with x-amz-sdk-checksum-algorithm (moto computes the checksum):
#  - CRC32: kept as a full-object checksum, so the target's equals the source's and
#    verifies the copy (state verify: checksum-crc32);
#  - SHA256: only a composite checksum is possible ("<base64>-N"); the target has one
#    with the algorithm, the copy is verified by its size;
#  - none: the target has none either.
# Then a SHA-256 object in 6 parts, killed mid-copy and resumed (see below), once copied
# (UploadPartCopy) and once streamed (UploadPart with the checksum ferry computes).
# moto only, whatever FERRY_TEST_S3 says: S3Proxy 4.1 keeps a checksum a PUT sends but
# computes none (it ignores x-amz-sdk-checksum-algorithm), and a multipart upload there
# ends without one (tried: target CRC32 empty after the copy).
export FERRY_TEST_S3=moto
source "$(dirname "$0")/lib.sh"

bucket_pair mpck
put_random() { s3_put_random "$FERRY_S3_ENDPOINT/$1/$2" "$3" "$4"; }
head_sums() { s3_head_sums "$FERRY_S3_ENDPOINT/$1/$2"; }

bytes=0
for spec in crc:CRC32:11534336 sha:SHA256:12582912 plain:none:11010048; do
    IFS=: read -r name algo size <<<"$spec"
    b=$(put_random "$SRC_B" "data/$name" "$size" "$algo") || fail "seeding data/$name"
    bytes=$((bytes + b))
done
head_sums "$SRC_B" data/crc >"$WORK/src-crc.txt"
src_crc=$(sed -n 's/^x-amz-checksum-crc32: //p' "$WORK/src-crc.txt")
[[ -n "$src_crc" && "$src_crc" != *-* ]] || fail "source data/crc has no full-object CRC32: $(cat "$WORK/src-crc.txt")"

# moto neither returns a part's checksum from UploadPartCopy nor wants it in the Complete;
# AWS does both: faultproxy --aws-part-checksums behaves as AWS does (and refuses a
# Complete without every part's right checksum), in front of moto for the whole test.
echo none >"$WORK/mode"
start_faultproxy "$FERRY_S3_ENDPOINT" --aws-part-checksums --latency-ms 700 --log "$WORK/req.log"
DS=mpck-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker c1 -X copy.multipart_threshold_mb=5 -X copy.multipart_part_size_mb=5 -X log.level=debug \
    -X s3.endpoint="$FAULTPROXY_EP"
wait_until 120 status_is "$DS" done ||
    { tail -30 "$WORK/c1.log" >&2; fail "not done: status $(state_field "$DS" status), error $(state_field "$DS" last_error)"; }
assert_done_exact "$DS" 3 "$bytes" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
grep "verify-mismatch\|differs from" "$WORK/c1.log" | head -3 >&2 && fail "a correct copy was reported as a mismatch"

for name in crc sha plain; do head_sums "$DST_B" "copy/$name" >"$WORK/dst-$name.txt"; done
for name in crc sha plain; do
    grep -q '^etag: [0-9a-f]*-[0-9]*$' "$WORK/dst-$name.txt" || fail "copy/$name was not copied in parts: $(tr '\n' ';' <"$WORK/dst-$name.txt")"
done
dst_crc=$(sed -n 's/^x-amz-checksum-crc32: //p' "$WORK/dst-crc.txt")
[[ "$dst_crc" == "$src_crc" ]] || fail "copy/crc: target CRC32 '$dst_crc', source '$src_crc' (all: $(tr '\n' ';' <"$WORK/dst-crc.txt"))"
# composite: AWS appends "-3"; moto 5.2.5's HEAD sends the bare value and says COMPOSITE
grep -q '^x-amz-checksum-sha256: [A-Za-z0-9+/=]\{44\}\(-3\)\?$' "$WORK/dst-sha.txt" &&
    grep -q '^x-amz-checksum-sha256: .*-3$\|^x-amz-checksum-type: COMPOSITE$' "$WORK/dst-sha.txt" \
    || fail "copy/sha: no composite SHA-256 of 3 parts: $(tr '\n' ';' <"$WORK/dst-sha.txt")"
grep -q '^x-amz-checksum-\(crc\|sha\)' "$WORK/dst-plain.txt" && fail "copy/plain got a checksum: $(tr '\n' ';' <"$WORK/dst-plain.txt")"
verify=$(state_field "$DS" verify)
[[ ",$verify," == *",checksum-crc32,"* ]] || fail "state verify '$verify': the CRC32 copy was not verified by its checksum"
[[ ",$verify," == *",size,"* ]] || fail "state verify '$verify': the others not by size"
[[ ",$verify," != *",etag-md5,"* ]] || fail "state verify '$verify': a multipart ETag taken for an MD5"
refused=$(grep -c '^partsums ' "$WORK/req.log" || true)
(( refused == 0 )) || fail "$refused CompleteMultipartUpload refused: a part's checksum missing or wrong"
note "ok: 3 multipart copies; CRC32 kept full-object ($dst_crc), SHA-256 composite, none for none; verify $verify"
kill -TERM "$LAST_PID" 2>/dev/null; wait "$LAST_PID" 2>/dev/null || true

# Resumed after a crash, the copy still completes with every part's checksum: AWS refuses
# a CompleteMultipartUpload of an upload created with a checksum algorithm unless each
# part carries its checksum, so the parts stored before the kill must have theirs in the
# Redis record (c<n>), and a part recorded without one (by an earlier ferry) is copied
# again. 6 parts of 5 MiB, every request now delayed 700 ms (and logged), 2 in flight.
put_random "$SRC_B" big/sha 31457280 SHA256 >/dev/null || fail "seeding big/sha"
echo "latency 1" >"$WORK/mode"
RARGS=(-X copy.multipart_threshold_mb=5 -X copy.multipart_part_size_mb=5 -X copy.max_in_flight=2
       -X s3.endpoint="$FAULTPROXY_EP" -X s3.timeout_ms=20000 -X log.level=debug)
rec_fields() { local k; k=$(mpu_key "$DS2"); [[ -n "$k" ]] && redis-cli -u "$FERRY_REDIS_URL" --raw HKEYS "$k"; }
parts_with_sums() { rec_fields | grep -c '^c[0-9]*$'; }
at_least_summed() { (( $(parts_with_sums) >= $1 )); }
# resume_case MODE [worker args...]: MODE copy (UploadPartCopy) or stream (a target
# endpoint of its own: UploadPart with the checksum ferry computes, sent as a trailer).
resume_case() {
    local mode=$1 key rec old_part upload refused creates n want got; shift
    DS2=mpck-$mode-$RANDOM
    : >"$WORK/req.log"
    publish "$DS2" "s3://$SRC_B/big/" "s3://$DST_B/$mode/"
    start_worker r1 "${RARGS[@]}" "$@"
    wait_until 120 at_least_summed 2 || { tail -20 "$WORK/r1.log" >&2; fail "$DS2: no 2 parts recorded with their checksum: $(rec_fields | tr '\n' ' ')"; }
    kill -KILL "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
    key=$(mpu_key "$DS2")
    rec=$(parts_recorded "$DS2" | tr '\n' ' ')
    (( $(wc -w <<<"$rec") < 6 )) || fail "$DS2: the copy finished before the kill"
    for n in $rec; do
        v=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$key" "c$n")
        [[ "$v" =~ ^SHA256:[A-Za-z0-9+/]{43}=$ ]] || fail "$DS2: part $n recorded with checksum '$v', want SHA256:<base64>"
    done
    # As an earlier ferry left it: the first recorded part without its checksum.
    old_part=${rec%% *}
    redis-cli -u "$FERRY_REDIS_URL" HDEL "$key" "c$old_part" >/dev/null
    upload=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$key" upload_id)
    note "$DS2: killed with parts [ $rec] recorded (part $old_part's checksum removed), upload $upload"
    start_worker r1 "${RARGS[@]}" "$@" # same worker id: takes its lease over at once
    wait_until 180 status_is "$DS2" done ||
        { grep -i 'warn\|error' "$WORK/r1.log" | tail -10 >&2; fail "$DS2: not done: $(state_field "$DS2" status), $(state_field "$DS2" last_error)"; }
    assert_done_exact "$DS2" 1 31457280 "s3://$SRC_B/big/" "s3://$DST_B/$mode/"
    refused=$(grep -c '^partsums ' "$WORK/req.log" || true)
    (( refused == 0 )) || fail "$DS2: $refused part or Complete requests refused for a missing or wrong checksum"
    creates=$(grep -cE '^latency POST [^ ]*\?uploads=? ' "$WORK/req.log" || true)
    (( creates == 1 )) || fail "$DS2: $creates CreateMultipartUpload requests, want 1 (the upload was not resumed)"
    for n in $rec; do
        want=1; (( n == old_part )) && want=2
        got=$(part_requests "$WORK/req.log" "$upload" "$n")
        (( got == want )) || fail "$DS2: part $n requested $got times, want $want"
    done
    grep -q "copied again, recorded without their SHA256 checksum" "$WORK/r1.log" || fail "$DS2: the re-copied part was not reported"
    head_sums "$DST_B" "$mode/sha" >"$WORK/dst-resume.txt"
    grep -q '^x-amz-checksum-sha256: ' "$WORK/dst-resume.txt" || fail "$DS2: the target has no SHA-256: $(tr '\n' ';' <"$WORK/dst-resume.txt")"
    kill -TERM "$LAST_PID" 2>/dev/null; wait "$LAST_PID" 2>/dev/null || true
    note "ok: $DS2 ($mode): resumed with parts [ $rec] from the record, part $old_part sent again, Complete accepted with every part's checksum"
}
resume_case copy
resume_case stream -X s3.target.endpoint="$FAULTPROXY_EP"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log 2>/dev/null; then fail "sanitizer report"; fi
