#!/usr/bin/env bash
# ferry-producer serve --http: /healthz, /readyz (Kafka and Redis; 503 naming redis while
# Redis is stopped, 200 again after) and /metrics counting POST /v1/events by status code
# -- the server's own refusals (401, 413) included -- next to the producer's counters.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/producer_lib.sh"
no_backstage

TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$TOKEN" > "$WORK/token"
PORT=$((20000 + RANDOM % 20000))
URL="http://127.0.0.1:$PORT"
D=pobs-$RANDOM
start_producer p1 --ingest --http "127.0.0.1:$PORT" --http-token-file "$WORK/token" \
    -X http.max_body_bytes=4096
wait_until 30 curl -sf "$URL/healthz" || { cat "$WORK/p1.log" >&2; fail "no /healthz"; }
[[ "$(curl -s "$URL/healthz")" == ok ]] || fail "/healthz body"
wait_until 30 curl -sf "$URL/readyz" || fail "/readyz never ready: $(curl -s "$URL/readyz")"

post() { # BODY [TOKEN] -> status code
    curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -H "Authorization: Bearer ${2:-$TOKEN}" --data-binary "$1" "$URL/v1/events"
}
payload() {
    printf '{"type":"dataset_onboard","payload":{"dataset_name":"%s","source":"s3://%s-src/a/","target":"s3://%s-dst/a/"%s}}' \
        "$1" "$D" "$D" "${2:-}"
}
[[ $(post "$(payload "$D-a")") == 202 ]] || fail "valid event not accepted"
[[ $(post "$(payload "$D-b")") == 202 ]] || fail "valid event not accepted"
[[ $(post "$(payload "$D-c")" wrong-token) == 401 ]] || fail "bad token not 401"
[[ $(post "$(payload "$D-d" ",\"requested_by\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"")") == 413 ]] || fail "not 413"
[[ $(post '{"type":"dataset_onboard","payload":{}}') == 400 ]] || fail "not 400"

curl -s "$URL/metrics" > "$WORK/metrics"
check() { grep -qx "$1" "$WORK/metrics" || { cat "$WORK/metrics" >&2; fail "missing: $1"; }; }
check 'ferry_http_ingest_requests_total{code="202"} 2'
check 'ferry_http_ingest_requests_total{code="401"} 1'
check 'ferry_http_ingest_requests_total{code="413"} 1'
check 'ferry_http_ingest_requests_total{code="400"} 1'
check 'ferry_producer_events_published_total{origin="api"} 2'
check 'ferry_producer_publish_failures_total 0'
check '# TYPE ferry_http_ingest_requests_total counter'
grep -q "$TOKEN" "$WORK/metrics" && fail "the token is in /metrics"

"$SRC/scripts/stack" stop-service redis >&2
wait_until 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' $URL/readyz) == 503 ]]" \
    || { "$SRC/scripts/stack" start-service redis >&2; fail "/readyz not 503 with Redis stopped"; }
curl -s "$URL/readyz" > "$WORK/ready-down.json"
"$SRC/scripts/stack" start-service redis >&2
jq -e '.ready == false and .failed == ["redis"] and .checks.kafka.ok' "$WORK/ready-down.json" >/dev/null \
    || fail "/readyz body while Redis was down: $(cat "$WORK/ready-down.json")"
[[ "$(curl -s "$URL/healthz")" == ok ]] || fail "/healthz during the outage"
wait_until 30 curl -sf "$URL/readyz" || fail "/readyz did not recover: $(curl -s "$URL/readyz")"
stop_producer "$PRODUCER_PID" || fail "producer exited non-zero"
note "ok: ingest counted by code, readyz followed Redis: $(cat "$WORK/ready-down.json")"
