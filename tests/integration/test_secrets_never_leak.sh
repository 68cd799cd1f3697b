#!/usr/bin/env bash
# Secrets never leak (issue 8 security pass, reliability S2): a full migration, a
# dead-lettered event and an HTTP-ingested event run with known canary secrets (the S3
# secret key, a Redis ACL user's password, a webhook bearer token file, the ingest
# bearer token); then every output channel is grepped for each of them: logs and
# stdout of every process, `status`, `status --json`, --dump-config, /metrics, /readyz,
# /status, /v1/migrations, the producer's /metrics and /readyz, the DLQ and migrated
# records (keys, headers, values) and the running worker's /proc/PID/cmdline and `ps`.
# Secret settings given on argv are refused with exit 2. The Kafka SASL password comes
# from kafka.sasl.password_file (a canary; on the plaintext stack librdkafka holds it
# without sending it, which is enough to see whether ferry echoes it anywhere).
source "$(dirname "$0")/lib.sh"

S3_SECRET=$AWS_SECRET_ACCESS_KEY
REDIS_USER="ferrycanary$RANDOM"
REDIS_PASS="redis-canary-$RANDOM-pw"
HOOK_TOKEN="hook-canary-$RANDOM-tok"
INGEST_TOKEN="ingest-canary-$RANDOM-tok"
KAFKA_PASS="kafka-canary-$RANDOM-pw"
SECRETS=("$S3_SECRET" "$REDIS_PASS" "$HOOK_TOKEN" "$INGEST_TOKEN" "$KAFKA_PASS")
printf '%s\n' "$KAFKA_PASS" > "$WORK/kafka-pass"
if [[ -z "${FERRY_KAFKA_SECURITY_PROTOCOL:-}" ]]; then
    export FERRY_KAFKA_SASL_USERNAME=ferry-canary FERRY_KAFKA_SASL_PASSWORD_FILE="$WORK/kafka-pass"
fi

# Redis ACL user (password only known to this test); the worker reaches Redis as it.
redis-cli -u "$FERRY_REDIS_URL" ACL SETUSER "$REDIS_USER" on ">$REDIS_PASS" '~*' '&*' '+@all' >/dev/null \
    || fail "ACL SETUSER failed"
trap 'redis-cli -u "$FERRY_REDIS_URL" ACL DELUSER "$REDIS_USER" >/dev/null 2>&1 || true; cleanup' EXIT
hostport=${FERRY_REDIS_URL#redis://}
export FERRY_REDIS_URL_ACL="redis://$REDIS_USER:$REDIS_PASS@$hostport"
printf '%s\n' "$HOOK_TOKEN" > "$WORK/hook-token"
printf '%s\n' "$INGEST_TOKEN" > "$WORK/ingest-token"

# --- argv is refused for secret settings
for kv in s3.target.secret_access_key=x s3.target.access_key_id=x s3.target.session_token=x \
          "redis.url=redis://u:p@127.0.0.1:1" sasl.password=x kafka.sasl.password=x \
          ssl.key.password=x; do
    set +e; "$WORKER" run -X "$kv" --dump-config >"$WORK/argv.out" 2>&1; rc=$?; set -e
    [[ $rc -eq 2 ]] || fail "-X $kv: exit $rc, expected 2: $(cat "$WORK/argv.out")"
    grep -q "x$\|u:p" "$WORK/argv.out" && fail "-X $kv: the refusal echoes the value"
done

U=$(tr -cd 0-9 <<<"$RUN_ID" | tail -c 12)  # unique dataset names: Redis state outlives a test
SRC_B=$(bucket sec-src); DST_B=$(bucket sec-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ 30)
"$S3TOOL" mb "$DST_B" >/dev/null

# --- producer with HTTP ingest (bearer token) publishes one event; the CLI publishes two
"$PRODUCER" serve --http 127.0.0.1:0 --ingest --http-token-file "$WORK/ingest-token" \
    --log-level debug >"$WORK/producer.out" 2>"$WORK/producer.log" &
PIDS+=("$!")
wait_until 30 grep -q 'listening on' "$WORK/producer.log" || { cat "$WORK/producer.log" >&2; fail "producer did not listen"; }
PPORT=$(sed -n 's/.*listening on [^ ]* (port \([0-9]*\)).*/\1/p' "$WORK/producer.log" | head -1)
[[ -n $PPORT ]] || PPORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/producer.log" | head -1 | sed 's/.*://')
body=$(printf '{"type":"dataset_onboard","payload":{"dataset_name":"sec-ingest-%s","source":"s3://%s/data/","target":"s3://%s/ingest/"}}' "$U" "$SRC_B" "$DST_B")
code=$(curl -s -o "$WORK/ingest.resp" -w '%{http_code}' -H "Authorization: Bearer $INGEST_TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$body" "http://127.0.0.1:$PPORT/v1/events")
[[ $code == 20[0-2] ]] || fail "ingest POST: $code $(cat "$WORK/ingest.resp")"
curl -s "http://127.0.0.1:$PPORT/v1/events" -H "Authorization: Bearer wrong-$INGEST_TOKEN" >"$WORK/ingest-bad.resp" || true
curl -s "http://127.0.0.1:$PPORT/metrics" >"$WORK/producer.metrics"
curl -s "http://127.0.0.1:$PPORT/readyz" >"$WORK/producer.readyz"
publish sec-good-$U "s3://$SRC_B/data/" "s3://$DST_B/good/" --log-level debug 2>>"$WORK/publish.log"
publish sec-dead-$U "s3://no-such-bucket-$$-sec/data/" "s3://$DST_B/dead/" 2>>"$WORK/publish.log"

# --- worker: Redis via the ACL user, webhook with a bearer token (to a closed port), debug logs
FERRY_REDIS_URL=$FERRY_REDIS_URL_ACL start_worker sec1 --http 127.0.0.1:0 --log-level debug \
    -X notify.webhook_url=http://127.0.0.1:9/hook -X notify.webhook_token_file="$WORK/hook-token" \
    -X notify.webhook_attempts=1
WPID=$LAST_PID
wait_until 30 grep -q 'http: listening on' "$WORK/sec1.log" || { cat "$WORK/sec1.log" >&2; fail "worker did not listen"; }
WPORT=$(sed -n 's/.*http: listening on [^ ]* (port \([0-9]*\)).*/\1/p' "$WORK/sec1.log" | head -1)
wait_until 60 status_is "sec-good-$U" "done" || { tail "$WORK/sec1.log" >&2; fail "sec-good-$U not done"; }
wait_until 60 status_is "sec-ingest-$U" "done" || fail "sec-ingest-$U not done"
assert_done_exact sec-good-$U "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/good/"
wait_until 60 bash -c "kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k\n' | grep -qx sec-dead-$U" \
    || fail "sec-dead-$U was not dead-lettered"

for p in /metrics /readyz /status /status.js /v1/migrations /healthz; do
    curl -s --max-time 5 "http://127.0.0.1:$WPORT$p" >"$WORK/http$(tr / _ <<<"$p").out" || true
done
[[ -s "$WORK/http_v1_migrations.out" ]] || fail "/v1/migrations was empty"
tr '\0' ' ' <"/proc/$WPID/cmdline" >"$WORK/cmdline.out"
ps -ww -o args= -p "$WPID" >"$WORK/ps.out" || true
FERRY_REDIS_URL=$FERRY_REDIS_URL_ACL "$WORKER" status >"$WORK/status.out" 2>&1 || fail "status failed"
FERRY_REDIS_URL=$FERRY_REDIS_URL_ACL "$WORKER" status --json >"$WORK/status-json.out" 2>&1 || fail "status --json failed"
grep -q sec-good-$U "$WORK/status-json.out" || fail "status --json lacks sec-good-$U (Redis ACL login broken?)"
FERRY_REDIS_URL=$FERRY_REDIS_URL_ACL "$WORKER" --dump-config -X notify.webhook_token_file="$WORK/hook-token" \
    >"$WORK/dump-config.out" 2>&1 || fail "--dump-config failed"
grep -q '^redis.url' "$WORK/dump-config.out" || fail "--dump-config has no redis.url line"
kill -TERM "$WPID"; wait "$WPID" 2>/dev/null || true
for t in "$FERRY_TOPIC_DLQ" "$FERRY_TOPIC_MIGRATED" "$FERRY_TOPIC_ONBOARD"; do
    kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$t" -e -q -f '%k %h %s\n' >"$WORK/topic-$t.out" 2>/dev/null || true
done
[[ -s "$WORK/topic-$FERRY_TOPIC_DLQ.out" ]] || fail "DLQ dump empty"

# --- grep every channel for every secret
channels=("$WORK"/*.log "$WORK"/*.out "$WORK"/*.resp "$WORK"/producer.metrics "$WORK"/producer.readyz)
(( ${#channels[@]} >= 20 )) || fail "only ${#channels[@]} channels collected"
leaks=0
for s in "${SECRETS[@]}"; do
    if hits=$(grep -lF -- "$s" "${channels[@]}"); then
        echo "LEAK of ${s:0:6}... in: $hits" >&2; leaks=$((leaks + 1))
    fi
done
(( leaks == 0 )) || fail "$leaks secret(s) leaked"
# ASan/UBSan builds: any sanitizer report in any process's log fails the test.
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "ok: ${#SECRETS[@]} secrets absent from ${#channels[@]} output channels; secret -X settings refused (exit 2)"
