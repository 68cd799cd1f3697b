#!/usr/bin/env bash
# Issue 11: an S3 endpoint that stays down longer than s3.outage_limit_ms ends the
# migrations waiting for it: dead-lettered with class s3-outage (state failed, same
# class), after the limit and not before. The endpoint answers 502 Bad Gateway to every
# request (tests/tools/faultproxy.py "badgateway": 5xx on everything, like a load
# balancer whose backends are gone) once the migration is under way.
source "$(dirname "$0")/lib.sh"

LIMIT_MS=8000
SRC_B=$(bucket ol-src); DST_B=$(bucket ol-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ 100 4000)
"$S3TOOL" mb "$DST_B" >/dev/null
DLQ_BASE=$(count_messages "$FERRY_TOPIC_DLQ")

MODE=$WORK/mode
start_faultproxy "$FERRY_S3_ENDPOINT"
EP=$FAULTPROXY_EP

DS=ol-$RANDOM$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker ol1 --http 127.0.0.1:0 -X s3.endpoint="$EP" -X s3.outage_limit_ms=$LIMIT_MS \
    -X copy.max_requests_per_second=10 -X copy.page_size=40 -X s3.probe_max_ms=2000 -X log.level=info
wait_until 30 grep -q 'http: listening on' "$WORK/ol1.log" || fail "no http listener"
PORT=$(sed -n 's/.*http: listening on [^ ]* (port \([0-9]*\)).*/\1/p' "$WORK/ol1.log" | head -1)
progressed() { [[ $(state_field "$DS" objects_done) -ge 10 ]]; }
wait_until 60 progressed || { tail -20 "$WORK/ol1.log" >&2; fail "the migration did not get going"; }

echo badgateway >"$MODE"
T0=$SECONDS
wait_until 30 grep -q "S3 endpoint $EP is down" "$WORK/ol1.log" || fail "502 on everything did not open the breaker"
dlq_has_outage() { kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_DLQ" -e -q -f '%k %h\n' 2>/dev/null | has "^$DS .*ferry-error-class=s3-outage"; }
wait_until 60 dlq_has_outage || { tail -20 "$WORK/ol1.log" >&2; fail "not dead-lettered with class s3-outage"; }
ELAPSED=$(( SECONDS - T0 ))
(( ELAPSED >= LIMIT_MS / 1000 )) || fail "dead-lettered after $ELAPSED s, before the ${LIMIT_MS} ms limit"
[[ $(count_messages "$FERRY_TOPIC_DLQ") -eq $((DLQ_BASE + 1)) ]] || fail "expected exactly one DLQ record: $(dlq_classes)"
wait_until 10 status_is "$DS" failed || fail "status $(state_field "$DS" status), expected failed"
[[ "$(state_field "$DS" error_class)" == s3-outage ]] || fail "error_class $(state_field "$DS" error_class)"
state_field "$DS" last_error | has "$EP down for" || fail "last_error: $(state_field "$DS" last_error)"
curl -s "http://127.0.0.1:$PORT/metrics" | has '^ferry_failures_total{class="s3-outage"} 1' \
    || fail "ferry_failures_total{class=\"s3-outage\"} is not 1"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log 2>/dev/null; then fail "sanitizer report"; fi
note "ok: 502 on everything for ${ELAPSED} s > s3.outage_limit_ms=${LIMIT_MS}: one DLQ record, class s3-outage"
