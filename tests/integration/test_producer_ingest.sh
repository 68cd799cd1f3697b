#!/usr/bin/env bash
# ferry-producer serve --ingest: POST /v1/events and GET /v1/datasets/NAME over real HTTP,
# events checked on the real Kafka topic.
#   valid -> 202 {event_id, topic, partition, offset} after the ack, the event on Kafka with
#   the dataset as key and the same id/partition/offset; every invalid input -> its status
#   code and nothing published; a retried POST with the same event_id -> the first answer,
#   no second event; a flood of 1,000 concurrent requests -> 1,000 events, none lost or
#   duplicated (compared by event id); GET /v1/datasets/NAME reads the state in Redis.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/producer_lib.sh"
no_backstage

TOKEN="tok-$(head -c 18 /dev/urandom | base64 | tr -d '=+/')"
printf '%s\n' "$TOKEN" > "$WORK/token"
D="ing$(date +%s)$$"
start_producer p1 --http 127.0.0.1:0 --ingest --http-token-file "$WORK/token" \
    -X http.max_body_bytes=4096 -X http.max_connections=128
P=$PRODUCER_PID
wait_until 20 grep -q 'http: listening on' "$WORK/p1.log" || fail "producer did not start: $(cat "$WORK/p1.log")"
PORT=$(grep -o 'http: listening on [^ ]* (port [0-9]*' "$WORK/p1.log" | grep -o '[0-9]*$')
URL="http://127.0.0.1:$PORT"

post() { # BODY [curl args...] -> "CODE BODY"; $USE_TOKEN, $USE_CTYPE override the headers
    local body=$1; shift
    curl -s -o "$WORK/resp" -w '%{http_code}' -H "Content-Type: ${USE_CTYPE:-application/json}" \
        -H "Authorization: Bearer ${USE_TOKEN:-$TOKEN}" "$@" --data-binary "$body" "$URL/v1/events"
    printf ' '; cat "$WORK/resp"
}
payload() { # DATASET [extra json]
    printf '{"type":"dataset_onboard","payload":{"dataset_name":"%s","source":"s3://%s-src/a/","target":"s3://%s-dst/a/"%s}}' \
        "$1" "$D" "$D" "${2:-}"
}
expect() { # CODE ERROR-CODE BODY [curl args...]
    local want=$1 code=$2 body=$3 got; shift 3
    got=$(post "$body" "$@")
    [[ ${got%% *} == "$want" ]] || fail "expected $want for ${body:0:80}..., got: $got"
    [[ -z "$code" || "$got" == *"\"error\":\"$code\""* ]] || fail "expected error $code, got: $got"
}

# --- valid ---------------------------------------------------------------------------------------
r=$(post "$(payload "$D-one" ',"requested_by":"jane","catalog_ref":"component:default/one","overwrite":"never"')")
[[ ${r%% *} == 202 ]] || fail "valid event: $r"
body=${r#* }
eid=$(jq -r .event_id <<<"$body")
[[ $(jq -r .topic <<<"$body") == "$FERRY_TOPIC_ONBOARD" ]] || fail "receipt topic: $body"
ev=$(events_for "$D-one")
[[ $(wc -l <<<"$ev") -eq 1 ]] || fail "expected one event for $D-one"
[[ $(jq -r .event_id <<<"$ev") == "$eid" ]] || fail "event id differs: $ev vs $body"
[[ $(jq .partition <<<"$ev") == $(jq .partition <<<"$body") && $(jq .offset <<<"$ev") == $(jq .offset <<<"$body") ]] \
    || fail "the receipt's partition/offset are not where the event is: $ev vs $body"
[[ $(jq -r .origin <<<"$ev") == api && $(jq -r .requested_by <<<"$ev") == jane ]] || fail "origin/requested_by: $ev"
[[ $(jq -r .catalog_ref <<<"$ev") == component:default/one && $(jq -r .overwrite <<<"$ev") == never ]] || fail "fields: $ev"
note "ok: valid event -> 202 after the ack; on Kafka with key $D-one at the receipt's offset"

# --- invalid: each its status, nothing published ------------------------------------------------
before=$(count_all)
curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$(payload "$D-x")" "$URL/v1/events" | has -x 401 || fail "no token: not 401"
USE_TOKEN="wrong-$TOKEN" expect 401 unauthorized "$(payload "$D-x")"
USE_TOKEN="${TOKEN:0:20}" expect 401 unauthorized "$(payload "$D-x")"
expect 413 body_too_large "$(payload "$D-x" ",\"requested_by\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"")"
expect 413 body_too_large "$(payload "$D-x" ",\"requested_by\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"")" -H 'Transfer-Encoding: chunked'
expect 400 invalid_json "$(printf '%*s' 40 '' | tr ' ' '[')$(printf '%*s' 40 '' | tr ' ' ']')"
expect 400 invalid_json '{"type":"dataset_onboard","payload":{"dataset_name":'
expect 400 invalid_json ''
expect 400 invalid_event '{"type":"dataset_offboard","payload":{}}'
expect 400 invalid_event '[1,2]'
expect 400 invalid_event "{\"type\":\"dataset_onboard\",\"payload\":{\"dataset_name\":\"$D-x\",\"source\":\"s3://a-src/x/\"}}"
expect 400 invalid_event "$(payload "$D-x" ',"tagret":"s3://b/"')"
expect 400 invalid_event "$(payload "Bad Name")"
expect 400 invalid_event "{\"type\":\"dataset_onboard\",\"payload\":{\"dataset_name\":\"$D-x\",\"source\":\"http://a/\",\"target\":\"s3://b-dst/x/\"}}"
expect 400 invalid_event "$(payload "$D-x" ',"event_id":"not-a-uuid"')"
expect 400 invalid_event "$(payload "$D-x" ',"verify":"yes"')"
USE_CTYPE=text/plain expect 415 unsupported_media_type "$(payload "$D-x")"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/v1/events") == 405 ]] || fail "GET /v1/events: not 405"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/v2/events") == 404 ]] || fail "unknown path: not 404"
# A valid request after them is answered 202 only once Kafka acknowledged it: when it is
# on the topic, anything an earlier request published would be there too.
r=$(post "$(payload "$D-sentinel")")
[[ ${r%% *} == 202 ]] || fail "valid sentinel event after the invalid ones: $r"
wait_until 30 has_n_events_for "$D-sentinel" 1 || fail "waited 30 s for the acknowledged sentinel event on $FERRY_TOPIC_ONBOARD"
[[ $(count_all) -eq $((before + 1)) ]] || fail "an invalid request published an event ($(count_all) events, expected $((before + 1)))"
grep -q "$TOKEN" "$WORK/p1.log" && fail "the token appears in the log"
note "ok: 401 (none/wrong token), 413 (length and chunked), 400 (depth, syntax, type, fields, name, URI, id), 415, 405, 404 -> nothing published"

# --- idempotent retry with a client-chosen event id ---------------------------------------------
id=$(cat /proc/sys/kernel/random/uuid)
r1=$(post "$(payload "$D-retry" ",\"event_id\":\"$id\"")")
r2=$(post "$(payload "$D-retry" ",\"event_id\":\"$id\"")")
[[ ${r1%% *} == 202 && ${r2%% *} == 200 ]] || fail "retry: $r1 / $r2"
[[ $(jq .duplicate <<<"${r2#* }") == true && $(jq .offset <<<"${r2#* }") == $(jq .offset <<<"${r1#* }") ]] || fail "retry answer: $r2"
[[ $(count_for "$D-retry") -eq 1 ]] || fail "a retried POST published twice"
note "ok: retried POST with the same event_id -> 200 with the first receipt, one event"

# --- GET /v1/datasets/NAME ------------------------------------------------------------------------
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/v1/datasets/$D-one") == 404 ]] || fail "unknown dataset: not 404"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/datasets/$D-one") == 401 ]] || fail "GET without token: not 401"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/v1/datasets/Bad_Name") == 400 ]] || fail "bad name: not 400"
redis-cli -u "$FERRY_REDIS_URL" HSET "ferry:{$D-one}:state" status running event_id "$eid" worker w1 \
    objects_done 25 objects_total 100 bytes_done 4096 started_at 1700000000000 updated_at 1700000001000 >/dev/null
st=$(curl -sf -H "Authorization: Bearer $TOKEN" "$URL/v1/datasets/$D-one") || fail "GET dataset failed"
[[ $(jq -r .status <<<"$st") == running && $(jq .progress <<<"$st") == 0.25 && $(jq .objects_total <<<"$st") == 100 ]] \
    || fail "state: $st"
[[ $(jq -r .event_id <<<"$st") == "$eid" && $(jq .updated_at_ms <<<"$st") == 1700000001000 ]] || fail "state: $st"
redis-cli -u "$FERRY_REDIS_URL" DEL "ferry:{$D-one}:state" >/dev/null
note "ok: GET /v1/datasets/NAME -> $st"

# --- flood: 1,000 concurrent requests -> 1,000 events --------------------------------------------
mkdir -p "$WORK/flood"
{
    for i in $(seq 1 1000); do
        (( i > 1 )) && printf 'next\n'
        printf 'silent\nurl = "%s/v1/events"\n' "$URL"
        printf 'header = "Content-Type: application/json"\nheader = "Authorization: Bearer %s"\n' "$TOKEN"
        printf "data = \"%s\"\n" "$(payload "$D-flood-$(( i % 10 ))" | sed 's/"/\\"/g')"
        printf 'output = "%s/flood/%d.json"\nwrite-out = "%%{http_code}\\n"\n' "$WORK" "$i"
    done
} > "$WORK/flood.curl"
before=$(count_all)
t0=$(now_ms)
curl -s --parallel --parallel-max 50 -K "$WORK/flood.curl" > "$WORK/flood.codes" 2>"$WORK/flood.err"
t1=$(now_ms)
[[ $(grep -cx 202 "$WORK/flood.codes") -eq 1000 ]] || fail "flood: $(sort "$WORK/flood.codes" | uniq -c | tr '\n' ' ')"
cat "$WORK/flood"/*.json | jq -r .event_id | sort > "$WORK/flood.sent"
[[ $(sort -u "$WORK/flood.sent" | wc -l) -eq 1000 ]] || fail "flood: receipts do not hold 1,000 distinct event ids"
events | jq -r --arg p "$D-flood-" 'select(.key | startswith($p)) | .event_id' | sort > "$WORK/flood.topic"
[[ $(wc -l < "$WORK/flood.topic") -eq 1000 ]] || fail "flood: $(wc -l < "$WORK/flood.topic") events on the topic, expected 1000"
diff -q "$WORK/flood.sent" "$WORK/flood.topic" >/dev/null || fail "flood: the event ids on the topic differ from the receipts"
[[ $(count_all) -eq $(( before + 1000 )) ]] || fail "flood: unexpected extra events"
note "ok: flood of 1000 requests (50 in parallel) -> 1000 x 202, exactly the same 1000 event ids on Kafka, $(( 1000 * 1000 / (t1 - t0 + 1) )) req/s"

stop_producer "$P" || fail "producer exited non-zero on SIGTERM"
