#!/usr/bin/env bash
# The worker's HTTP listener on the real stack: /healthz answers; /readyz turns 200 once
# the worker is in its group; /metrics scraped *during* a migration shows the migration
# in flight and ferry_objects_copied_total rising, and afterwards the exact object and
# byte counts; consumer lag comes from librdkafka statistics; /v1/migrations and the
# status page are served; /readyz answers 503 naming redis while Redis is stopped and
# recovers after it is started again (and /healthz stays 200 meanwhile).
source "$(dirname "$0")/lib.sh"

# http_port LOG : the port the worker logged it listens on (it binds port 0).
http_port() { sed -n 's/.*http: listening on [^ ]* (port \([0-9]*\)).*/\1/p' "$1" | head -1; }
get() { curl -sS --max-time 5 "http://127.0.0.1:$PORT$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT$1"; }
metric() { # NAME -> value of an unlabelled sample in the last scrape ("" if absent)
    awk -v n="$1" '$1 == n {print $2}' "$WORK/scrape"
}

SRC_B=$(bucket obs-src); DST_B=$(bucket obs-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 400 3000)
"$S3TOOL" mb "$DST_B"
DS=obs-$RANDOM

# Paced, so the migration lasts several seconds and is scraped while it runs.
start_worker m1 --http 127.0.0.1:0 -X copy.max_in_flight=4 -X copy.page_size=50 \
    -X copy.max_requests_per_second=80 -X statistics.interval.ms=500
WPID=$LAST_PID
wait_until 30 grep -q 'http: listening on' "$WORK/m1.log" || { cat "$WORK/m1.log" >&2; fail "no listener"; }
PORT=$(http_port "$WORK/m1.log")
[[ -n "$PORT" ]] || fail "no port in the log"

[[ "$(get /healthz)" == ok ]] || fail "/healthz: $(get /healthz)"
wait_until 60 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/readyz) == 200 ]]" \
    || fail "/readyz never became ready: $(get /readyz)"
get /readyz | jq -e '.ready == true and .checks.redis.ok and .checks.s3.ok and .checks.consumer.ok' >/dev/null \
    || fail "/readyz body: $(get /readyz)"
get /metrics > "$WORK/scrape"
grep -q '^# TYPE ferry_copy_duration_seconds histogram$' "$WORK/scrape" || fail "no histogram TYPE line"
[[ "$(metric ferry_migrations_in_flight)" == 0 ]] || fail "in flight before any event"
[[ "$(metric ferry_objects_copied_total)" == 0 ]] || fail "copied before any event"
grep -q '^ferry_failures_total{class="s3-server"} 0$' "$WORK/scrape" || fail "failure classes not pre-created"

publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"

# Scrape while it runs: remember every distinct copied count seen while in flight.
saw_inflight=0; saw_lag=0; copied_seen=()
end=$((SECONDS + 120))
while ! status_is "$DS" done; do
    (( SECONDS < end )) || { tail -20 "$WORK/m1.log" >&2; fail "migration not done"; }
    get /metrics > "$WORK/scrape" || fail "scrape failed"
    if [[ "$(metric ferry_migrations_in_flight)" == 1 ]]; then
        saw_inflight=1
        c=$(metric ferry_objects_copied_total)
        if (( c > 0 )) && [[ " ${copied_seen[*]} " != *" $c "* ]]; then copied_seen+=("$c"); fi
    fi
    if grep -Eq '^ferry_consumer_lag\{partition="[0-9]+"\} [1-9]' "$WORK/scrape"; then
        saw_lag=1; cp "$WORK/scrape" "$WORK/scrape-during"
    fi
    sleep 0.3
done
note "copied counts seen during the migration: ${copied_seen[*]}"
(( saw_inflight )) || fail "never saw ferry_migrations_in_flight 1"
(( ${#copied_seen[@]} >= 2 )) || fail "ferry_objects_copied_total did not rise during the migration"
prev=0
for c in "${copied_seen[@]}"; do (( c > prev )) || fail "copied went down: ${copied_seen[*]}"; prev=$c; done
(( saw_lag )) || fail "ferry_consumer_lag never showed the event in flight"

# Afterwards: exact totals (one fresh worker, one migration).
wait_until 10 bash -c "curl -s http://127.0.0.1:$PORT/metrics | grep -qx 'ferry_migrations_in_flight 0'" \
    || fail "still in flight after done"
get /metrics > "$WORK/scrape"
[[ "$(metric ferry_objects_copied_total)" == "$N" ]] || fail "objects copied $(metric ferry_objects_copied_total) != $N"
[[ "$(metric ferry_bytes_copied_total)" == "$BYTES" ]] || fail "bytes copied $(metric ferry_bytes_copied_total) != $BYTES"
[[ "$(metric ferry_events_consumed_total)" == 1 ]] || fail "events consumed $(metric ferry_events_consumed_total)"
[[ "$(metric ferry_copy_duration_seconds_count)" == "$N" ]] || fail "histogram count $(metric ferry_copy_duration_seconds_count)"
[[ "$(metric ferry_dlq_records_total)" == 0 ]] || fail "dead letters"
grep -q '^ferry_copy_duration_seconds_bucket{le="+Inf"} '"$N"'$' "$WORK/scrape" || fail "+Inf bucket"

# The status page and its data.
get /v1/migrations | jq -e --arg ds "$DS" --argjson n "$N" \
    '.migrations[] | select(.dataset == $ds) | .status == "done" and .objects_done == $n and .progress == 1' \
    >/dev/null || fail "/v1/migrations: $(get /v1/migrations)"
curl -sS -D "$WORK/headers" "http://127.0.0.1:$PORT/status" | has '<script src="status.js"' \
    || fail "status page not served"
grep -qi "^content-security-policy: default-src 'none'" "$WORK/headers" || fail "no CSP on the page"
[[ "$(code /status.js)" == 200 && "$(code /status.css)" == 200 ]] || fail "page assets"
[[ "$(code /nope)" == 404 ]] || fail "unknown path"

# Redis down: not ready, naming redis; still alive. Back up: ready again.
"$SRC/scripts/stack" stop-service redis >&2
wait_until 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/readyz) == 503 ]]" \
    || { "$SRC/scripts/stack" start-service redis >&2; fail "/readyz still $(code /readyz) with Redis stopped"; }
get /readyz > "$WORK/ready-down.json"
"$SRC/scripts/stack" start-service redis >&2
jq -e '.ready == false and (.failed | index("redis")) and (.checks.redis.ok == false)' \
    "$WORK/ready-down.json" >/dev/null || fail "/readyz body while Redis was down: $(cat "$WORK/ready-down.json")"
grep -q 'ferry-test-secret\|password' "$WORK/ready-down.json" && fail "/readyz leaks a secret"
note "readyz while Redis was down: $(cat "$WORK/ready-down.json")"
wait_until 30 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/readyz) == 200 ]]" \
    || fail "/readyz did not recover after Redis came back: $(get /readyz)"
[[ "$(get /healthz)" == ok ]] || fail "/healthz after the outage"

# Draining: a stopping worker is not ready; it exits cleanly.
kill -TERM "$WPID"
wait "$WPID" || fail "worker exited non-zero on SIGTERM"
if [[ -n "${FERRY_OBS_KEEP:-}" ]]; then cp "$WORK"/scrape* "$FERRY_OBS_KEEP"/; fi
note "ok: metrics rose during the migration (${copied_seen[*]}), exact totals after, readyz followed Redis"
