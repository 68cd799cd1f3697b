#!/usr/bin/env bash
# Scenario 6: the Kafka broker restarted in the middle of a migration: the migration
# completes and its outcome is recorded once (state done, one DatasetMigrated, no DLQ).
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket kafka-src); DST_B=$(bucket kafka-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 600 4000)
"$S3TOOL" mb "$DST_B"
DS=kafka-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker k1 -X copy.max_in_flight=4 -X copy.page_size=50 -X copy.max_requests_per_second=60 >/dev/null
wait_until 60 bash -c "(( \$(redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$DS}:state' objects_done || echo 0) >= 50 ))" \
    || fail "migration did not start"
"$SRC/scripts/stack" restart-service kafka >&2
wait_until 180 status_is "$DS" done || { tail -20 "$WORK/k1.log" >&2; fail "not done after the broker restart"; }
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
wait_until 60 bash -c "[[ \$(kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_MIGRATED' -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 1 ]]" \
    || fail "no DatasetMigrated after the restart"
# Committed past the event: no redelivery can record the outcome again.
wait_committed 120
[[ $(count_messages "$FERRY_TOPIC_MIGRATED") -eq 1 ]] || fail "outcome recorded $(count_messages "$FERRY_TOPIC_MIGRATED") times"
(( $(count_messages "$FERRY_TOPIC_DLQ") == 0 )) || fail "the broker restart dead-lettered the event"
note "ok: completed across a broker restart, one DatasetMigrated"
