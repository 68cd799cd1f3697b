#!/usr/bin/env bash
# Scenario 5: Redis stopped for 10 s in the middle of a migration, then started again:
# the worker waits and retries (it never skips and never dead-letters for it) and the
# migration completes with every object verified.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket redis-src); DST_B=$(bucket redis-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 600 4000)
"$S3TOOL" mb "$DST_B"
DS=redis-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker o1 -X copy.max_in_flight=4 -X copy.page_size=50 -X copy.max_requests_per_second=60 >/dev/null
wait_until 180 bash -c "(( \$(redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$DS}:state' objects_done || echo 0) >= 50 ))" \
    || fail "waited 180 s for the migration to copy 50 objects before stopping Redis (objects_done $(state_field "$DS" objects_done))"
"$SRC/scripts/stack" stop-service redis >&2
# Down until the worker noticed, and retried at least once while it was still down.
retried_while_down() { (( $(grep -c 'redis unavailable' "$WORK/o1.log") >= 2 )); }
wait_until 60 retried_while_down || { "$SRC/scripts/stack" start-service redis >&2; fail "waited 60 s for the worker to notice Redis was down and retry (lines: $(grep -c 'redis unavailable' "$WORK/o1.log"))"; }
"$SRC/scripts/stack" start-service redis >&2
wait_until 180 status_is "$DS" done || { tail -20 "$WORK/o1.log" >&2; fail "not done after the Redis outage"; }
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
grep -q 'redis unavailable' "$WORK/o1.log" || fail "the worker never noticed Redis was down: test proves nothing"
(( $(count_messages "$FERRY_TOPIC_DLQ") == 0 )) || fail "Redis outage dead-lettered the event"
note "ok: completed after a Redis outage"
