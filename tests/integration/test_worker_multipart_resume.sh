#!/usr/bin/env bash
# Multipart mid-object resume (issue 11 "Multipart", DESIGN.md §9 "Multipart state").
# The worker copies one 60 MiB object in 12 parts of 5 MiB through tests/tools/faultproxy.py,
# which delays every request (so the copy takes a while) and logs every request line.
#  1. resume: the worker is killed (SIGKILL) once the Redis record ferry:{ds}:mpu:* lists
#     a few finished parts; the next worker continues the same upload. Each part recorded
#     before the kill is requested exactly once in all, there is one CreateMultipartUpload,
#     and no upload and no record is left behind. Run for UploadPartCopy (one endpoint)
#     and for the cross-endpoint stream (UploadPart fed by ranged GETs).
#  2. sweep: as 1, but the record is deleted after the kill (a crash before it was
#     written); once the upload is older than the lease TTL, the next migration's sweep
#     aborts it (the proxy sees the AbortMultipartUpload of that upload id) and copies
#     the object afresh; nothing is left behind.
#  3. fenced: the lease is taken from the worker mid-object; its next record write is
#     refused, so it aborts the upload (the proxy sees the AbortMultipartUpload) and no
#     upload is left behind.
# In every run the sweep's ListMultipartUploads goes out with the validation's write probe
# (before the probe's DELETE), not one round trip after it.
source "$(dirname "$0")/lib.sh"

FAULTPROXY=$SRC/tests/tools/faultproxy.py
U=$(tr -cd 0-9 <<<"$RUN_ID" | tail -c 12)
# The lease TTL bounds the sweep's wait (an orphan counts once older than it), but a
# worker starved for longer than it loses its lease and aborts its upload. With 2 s the
# cross-endpoint resume once made 3 CreateMultipartUpload instead of 1, under ASan on a
# machine running two suites at once (most likely that: its logs were not kept).
SIZE=$((60 << 20)); PARTS=12; TTL_MS=6000

SRC_B=$(bucket mpr-src); DST_B=$(bucket mpr-dst)
"$S3TOOL" mb "$SRC_B" >/dev/null
"$S3TOOL" mb "$DST_B" >/dev/null
read -r n1 b1 < <("$S3TOOL" seed "s3://$SRC_B/data/" --count 1 --min-size $SIZE --max-size $SIZE --seed 21)
(( n1 == 1 && b1 == SIZE )) || fail "seeding the source: $n1 objects, $b1 bytes"

# start_proxy NAME UPSTREAM : every request delayed and logged to $WORK/NAME.req
start_proxy() {
    python3 "$FAULTPROXY" --upstream "$2" --kind latency --rate 1 --latency-ms 700 \
        --log "$WORK/$1.req" --port-file "$WORK/$1.port" >"$WORK/$1.proxy.out" 2>&1 &
    PIDS+=("$!")
    wait_until 60 test -s "$WORK/$1.port" || fail "faultproxy did not start: $(cat "$WORK/$1.proxy.out")"
    PROXY_PORT=$(cat "$WORK/$1.port")
}

at_least_parts() { (( $(parts_recorded "$1" | wc -l) >= $2 )); }
uploads_under() { "$S3TOOL_UPLOADS" uploads "s3://$DST_B/$1" | wc -l; }
no_uploads_under() { local n; n=$(uploads_under "$1") && (( n == 0 )); }
older_than_ttl() { (( $(date +%s%3N) - $1 > TTL_MS + 500 )); }

# run_copy NAME MODE DS DST_PREFIX [worker args...] : starts worker NAME on the dataset
run_copy() {
    local name=$1 mode=$2; shift 2
    if [[ $mode == cross ]]; then
        FERRY_S3_TARGET_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 FERRY_S3_TARGET_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 \
            start_worker "$name" -X s3.target.endpoint="http://127.0.0.1:$PROXY_PORT" "${WARGS[@]}" "$@"
    else
        start_worker "$name" -X s3.endpoint="http://127.0.0.1:$PROXY_PORT" "${WARGS[@]}" "$@"
    fi
}
WARGS=(-X copy.multipart_threshold_mb=5 -X copy.multipart_part_size_mb=5 -X copy.max_in_flight=2
       -X lease.ttl_ms=$TTL_MS -X s3.timeout_ms=20000)

# swept_with_probe LOG: every migration's probe DELETE follows a ListMultipartUploads sent
# after that probe's PUT, i.e. together with it (the DELETE waits for the PUT's answer)
swept_with_probe() {
    awk '/^[a-z]+ PUT [^ ]*\.ferry-write-probe-/ { put = 1; up = 0 }
         /^[a-z]+ GET [^ ]*[?&]uploads/ { if (put) up = 1 }
         /^[a-z]+ DELETE [^ ]*\.ferry-write-probe-/ { n++; if (!up) bad++; put = 0 }
         END { exit !(n > 0 && !bad) }' "$1"
}

# scenario MODE KIND : KIND resume | sweep | fenced
scenario() {
    local mode=$1 kind=$2 ds="mpr-$1-$2-$U" dst="$1-$2/" log first_id rec id n
    export FERRY_TOPIC_ONBOARD="$TOPIC_PREFIX.mpr-$mode-$kind.onboard" FERRY_WORKER_GROUP="ferry-test-$RUN_ID-$mode-$kind"
    ensure_topic "$FERRY_TOPIC_ONBOARD"
    if [[ $mode == cross ]]; then
        start_proxy "$ds" "$FERRY_S3_ENDPOINT_2"
        S3TOOL_UPLOADS=s3tool_2
        FERRY_S3_ENDPOINT=$FERRY_S3_ENDPOINT_2 AWS_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 \
            AWS_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 "$S3TOOL" mb "$DST_B" >/dev/null 2>&1 || true
    else
        start_proxy "$ds" "$FERRY_S3_ENDPOINT"
        S3TOOL_UPLOADS=$S3TOOL
    fi
    log=$WORK/$ds.req
    publish "$ds" "s3://$SRC_B/data/" "s3://$DST_B/$dst"
    run_copy a1 "$mode"
    local pid=$LAST_PID
    if [[ $kind == fenced ]]; then
        wait_until 90 at_least_parts "$ds" 2 || { cat "$WORK/a1.log" >&2; fail "$ds: no 2 parts recorded in Redis"; }
        first_id=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$(mpu_key "$ds")" upload_id)
        redis-cli -u "$FERRY_REDIS_URL" SET "ferry:{$ds}:lease" "thief:1" PX 600000 >/dev/null
        wait_until 60 grep -q "^latency DELETE [^ ]*?uploadId=$(urlq "$first_id") " "$log" ||
            { cat "$WORK/a1.log" >&2; fail "$ds: the upload was not aborted after the lease was lost"; }
        wait_until 30 no_uploads_under "$dst" || fail "$ds: uploads left behind: $("$S3TOOL_UPLOADS" uploads "s3://$DST_B/$dst")"
        n=$(grep -c '^latency PUT [^ ]*?partNumber=' "$log" || true)
        (( n < PARTS )) || fail "$ds: all $n parts were copied after the lease was lost"
        note "ok: $ds: lease lost after $(parts_recorded "$ds" | wc -l) recorded parts, upload aborted ($n part requests)"
        TABLE+=("$mode|$kind|$(parts_recorded "$ds" | wc -l)|$n|1")
        swept_with_probe "$log" || fail "$ds: the sweep's listing waited for the probe's DELETE: $(grep -E 'probe|uploads' "$log")"
        kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
        return 0
    fi
    wait_until 90 at_least_parts "$ds" 4 || { cat "$WORK/a1.log" >&2; fail "$ds: no 4 parts recorded in Redis"; }
    kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
    local t_kill; t_kill=$(date +%s%3N)
    rec=$(parts_recorded "$ds" | tr '\n' ' ')
    first_id=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$(mpu_key "$ds")" upload_id)
    [[ -n "$first_id" ]] || fail "$ds: no upload id recorded"
    (( $(parts_recorded "$ds" | wc -l) < PARTS )) || fail "$ds: the copy finished before the kill"
    note "$ds: killed with parts [ $rec] of $PARTS recorded (upload $first_id)"
    if [[ $kind == sweep ]]; then
        redis-cli -u "$FERRY_REDIS_URL" DEL "$(mpu_key "$ds")" >/dev/null
        wait_until 30 older_than_ttl "$t_kill" || fail "clock"
    fi
    run_copy a1 "$mode" # same worker id: takes its lease over at once
    wait_until 180 status_is "$ds" done || { cat "$WORK/a1.log" >&2; fail "$ds: not done"; }
    if [[ $mode == cross ]]; then
        S3TOOL_DST_ENDPOINT=$FERRY_S3_ENDPOINT_2 S3TOOL_DST_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 \
            S3TOOL_DST_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 \
            assert_done_exact "$ds" 1 "$SIZE" "s3://$SRC_B/data/" "s3://$DST_B/$dst"
    else
        assert_done_exact "$ds" 1 "$SIZE" "s3://$SRC_B/data/" "s3://$DST_B/$dst"
    fi
    local creates; creates=$(grep -cE '^latency POST [^ ]*\?uploads=? ' "$log" || true)
    if [[ $kind == resume ]]; then
        (( creates == 1 )) || fail "$ds: $creates CreateMultipartUpload requests, want 1 (the upload was not resumed)"
        for n in $rec; do
            (( $(part_requests "$log" "$first_id" "$n") == 1 )) || fail "$ds: part $n was requested $(part_requests "$log" "$first_id" "$n") times"
        done
        grep -q "resuming the multipart upload" "$WORK/a1.log" || fail "$ds: no resume logged"
    else
        (( creates == 2 )) || fail "$ds: $creates CreateMultipartUpload requests, want 2"
        grep -q "^latency DELETE [^ ]*?uploadId=" "$log" || fail "$ds: the orphan upload was not aborted"
        grep -q "aborted 1 orphaned multipart upload" "$WORK/a1.log" || fail "$ds: no sweep logged"
    fi
    (( $(uploads_under "$dst") == 0 )) || fail "$ds: uploads left behind: $("$S3TOOL_UPLOADS" uploads "s3://$DST_B/$dst")"
    [[ -z "$(mpu_key "$ds")" ]] || fail "$ds: multipart record left in Redis"
    swept_with_probe "$log" || fail "$ds: the sweep's listing waited for the probe's DELETE: $(grep -E 'probe|uploads' "$log")"
    local total; total=$(grep -c '^latency PUT [^ ]*?partNumber=' "$log" || true)
    note "ok: $ds: $PARTS parts, $total part requests in all, $creates CreateMultipartUpload"
    TABLE+=("$mode|$kind|$(wc -w <<<"$rec")|$total|$creates")
    kill -TERM "$LAST_PID" 2>/dev/null; wait "$LAST_PID" 2>/dev/null || true
}
s3tool_2() {
    FERRY_S3_ENDPOINT=$FERRY_S3_ENDPOINT_2 AWS_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 \
        AWS_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 "$S3TOOL" "$@"
}

TABLE=("mode|scenario|parts recorded at kill|part requests|creates")
for s in ${FERRY_MPR_SCENARIOS:-same:resume same:sweep cross:resume same:fenced}; do
    scenario "${s%%:*}" "${s##*:}"
done
printf '%s\n' "${TABLE[@]}" | column -t -s'|' >&2
