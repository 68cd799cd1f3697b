#!/usr/bin/env bash
# Issue 11: a server that accepts connections and then never answers (seen: an S3Proxy
# out of heap kept 16 requests hanging for 13 minutes, nothing logged, the dataset shown
# as running). tests/tools/faultproxy.py in "hang" mode in front of the real server
# (S3Proxy, or moto in the .moto variant: the same test, FERRY_TEST_S3=moto); the worker
# has s3.stall_timeout_ms=3000. The stall must be detected within the stall timeout
# (plus slack for a loaded machine), logged at warn, shown in /readyz (503, naming the
# endpoint) and as the dataset's last error, and handled like an outage: once the proxy
# answers again the migration finishes, exact, without a charged attempt or a DLQ record.
source "$(dirname "$0")/lib.sh"

STALL_MS=3000
SRC_B=$(bucket st-src); DST_B=$(bucket st-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ 120 4000)
"$S3TOOL" mb "$DST_B" >/dev/null
DLQ_BASE=$(count_messages "$FERRY_TOPIC_DLQ")

MODE=$WORK/mode
start_faultproxy "$FERRY_S3_ENDPOINT"
EP=$FAULTPROXY_EP

DS=st-$RANDOM$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker st1 --http 127.0.0.1:0 -X s3.endpoint="$EP" -X s3.stall_timeout_ms=$STALL_MS \
    -X s3.timeout_ms=60000 -X copy.max_requests_per_second=10 -X copy.page_size=40 \
    -X s3.probe_max_ms=2000 -X log.level=info
wait_until 30 grep -q 'http: listening on' "$WORK/st1.log" || fail "no http listener"
PORT=$(sed -n 's/.*http: listening on [^ ]* (port \([0-9]*\)).*/\1/p' "$WORK/st1.log" | head -1)
progressed() { [[ $(state_field "$DS" objects_done) -ge 10 ]]; }
wait_until 60 progressed || { tail -20 "$WORK/st1.log" >&2; fail "the migration did not get going"; }

echo hang >"$MODE"
T0=$SECONDS
# Detected within the stall timeout; 3 s + 12 s slack for a loaded machine.
wait_until 15 grep -q "S3 endpoint $EP is down (a request stalled" "$WORK/st1.log" \
    || { tail -20 "$WORK/st1.log" >&2; fail "no stall reported within 15 s of the hang"; }
DETECT=$(( SECONDS - T0 ))
grep '"level":"warn"' "$WORK/st1.log" | has "S3 endpoint $EP is down (a request stalled" || fail "the stall is not logged at warn"
readyz_stalled() {
    local body
    body=$(curl -s --max-time 5 -w ' HTTP%{http_code}' "http://127.0.0.1:$PORT/readyz")
    [[ $body == *HTTP503 && $body == *"$EP "*open*stalled* ]]
}
wait_until 10 readyz_stalled || fail "/readyz does not report the stalled endpoint: $(curl -s "http://127.0.0.1:$PORT/readyz")"
last_error_stalled() { [[ "$(state_field "$DS" error_class)" == s3-stall && "$(state_field "$DS" last_error)" == *"$EP"* ]]; }
wait_until 10 last_error_stalled || fail "the dataset's last error does not show the stall: $(state_field "$DS" error_class): $(state_field "$DS" last_error)"
[[ "$(state_field "$DS" status)" == running ]] || fail "status $(state_field "$DS" status) while the endpoint hangs"
# Keep it hung a while (probes stall too), then let it answer.
holds_for $(( 15 - (SECONDS - T0) )) status_is "$DS" running || fail "status $(state_field "$DS" status) during the hang"
rm -f "$MODE"
wait_until 120 status_is "$DS" done || { tail -30 "$WORK/st1.log" >&2; fail "not done after the hang ended"; }
assert_done_exact "$DS" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
[[ $(count_messages "$FERRY_TOPIC_DLQ") -eq $DLQ_BASE ]] || fail "dead-lettered: $(dlq_classes)"
[[ "$(state_field "$DS" attempts)" == 1 ]] || fail "the hang cost attempts: $(state_field "$DS" attempts)"
curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" | has 200 \
    || fail "/readyz not ready after recovery: $(curl -s "http://127.0.0.1:$PORT/readyz")"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log 2>/dev/null; then fail "sanitizer report"; fi
note "ok: hang detected in ${DETECT} s (stall timeout $((STALL_MS / 1000)) s), reported, waited out; $OBJS objects exact, nothing dead-lettered"
