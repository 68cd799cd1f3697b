#!/usr/bin/env bash
# Notify: after a migration, DatasetMigrated goes to Kafka and, when configured, a
# webhook POST (with a bearer token from a file). A failing webhook does not undo the
# migration but is visible in the state.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket wh-src); DST_B=$(bucket wh-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 20 1000)
"$S3TOOL" mb "$DST_B"
D1=wh-ok-$RANDOM; D2=wh-bad-$RANDOM
echo "s3cr3t-token" > "$WORK/token"
python3 "$SRC/tests/tools/webhook_receiver.py" "$WORK/hooks.jsonl" s3cr3t-token > "$WORK/port" &
PIDS+=($!)
wait_until 60 test -s "$WORK/port" || fail "receiver did not start"
PORT=$(cat "$WORK/port")

publish $D1 "s3://$SRC_B/data/" "s3://$DST_B/ok/"
start_worker h1 -X notify.webhook_url="http://127.0.0.1:$PORT/hook" -X notify.webhook_token_file="$WORK/token"
wait_until 60 status_is $D1 done || fail "not done"
wait_until 20 grep -q "\"dataset\":\"$D1\"" "$WORK/hooks.jsonl" || fail "webhook not received"
python3 - "$WORK/hooks.jsonl" "$N" <<'PY' || fail "webhook body wrong"
import json, sys
doc = json.loads(open(sys.argv[1]).readline())
assert doc["type"] == "dataset_migrated" and doc["objects"] == int(sys.argv[2]), doc
PY
wait_until 10 bash -c "[[ \$(redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$D1}:state' webhook) == ok ]]" \
    || fail "webhook outcome not recorded"
kill -TERM "$LAST_PID"; wait "$LAST_PID" || true

# A webhook that keeps failing: the migration stands, the failure is visible.
publish $D2 "s3://$SRC_B/data/" "s3://$DST_B/bad/"
start_worker h2 -X notify.webhook_url="http://127.0.0.1:1/hook" -X notify.webhook_attempts=2
wait_until 60 status_is $D2 done || fail "failing webhook undid the migration"
wait_until 30 bash -c "redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$D2}:state' webhook | grep -q '^failed'" \
    || fail "webhook failure not recorded in the state"
grep -q "s3cr3t-token" "$WORK"/h*.log && fail "the webhook token was logged"
note "ok"
