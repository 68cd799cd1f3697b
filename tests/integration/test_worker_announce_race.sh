#!/usr/bin/env bash
# A duplicate of an event that arrives after the migration was marked done but before its
# DatasetMigrated was recorded as sent must not announce it a second time. The test hook
# FERRY_TEST_ANNOUNCE_DELAY_MS holds each worker for 3 s between deciding to announce and
# producing, so the duplicate (on another partition, another worker, waiting for the
# lease) always lands in that window. Exactly one DatasetMigrated.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket ann-src); DST_B=$(bucket ann-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 50 2000)
"$S3TOOL" mb "$DST_B"
DS=ann-$RANDOM
ARGS=(-X log.level=debug -X copy.max_in_flight=4)
FERRY_TEST_ANNOUNCE_DELAY_MS=3000 start_worker a1 "${ARGS[@]}"
FERRY_TEST_ANNOUNCE_DELAY_MS=3000 start_worker a2 "${ARGS[@]}"
# Produce once the group is stable, so the two copies land on different workers.
last_assigned() { grep -o 'assigned [0-9]* partition' "$WORK/$1.log" | tail -1 | tr -dc 0-9; }
total_partitions() {
    local t n=0
    for t in "$FERRY_TOPIC_ONBOARD" "$FERRY_TOPIC_CHUNKS"; do
        n=$((n + $(kcat -b "$FERRY_KAFKA_BROKERS" -L -t "$t" | grep -c 'partition [0-9]*,')))
    done
    echo "$n"
}
TOTAL=$(total_partitions)
settled() { (( $(last_assigned a1) + $(last_assigned a2) == TOTAL && $(last_assigned a1) < TOTAL )); }
wait_until 60 settled || fail "group did not settle"
"$EVENTTOOL" onboard --dataset "$DS" --source "s3://$SRC_B/data/" --target "s3://$DST_B/copy/" > "$WORK/ev.bin"
produce_file "$FERRY_TOPIC_ONBOARD" 0 "$DS" "$WORK/ev.bin"
produce_file "$FERRY_TOPIC_ONBOARD" 3 "$DS" "$WORK/ev.bin"
wait_until 120 status_is "$DS" done || fail "not done"
wait_until 30 grep -q "already migrated" "$WORK/a1.log" "$WORK/a2.log" || fail "the duplicate was not recognised as done"
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
# Committed past both copies: each finished, nothing can announce any more.
wait_committed 60
# The duplicate really came inside the window: it found the claim held and waited.
grep -q 'announced by another worker' "$WORK/a1.log" "$WORK/a2.log" ||
    fail "the duplicate did not wait for the announcing worker (window missed)"
got=$(count_messages "$FERRY_TOPIC_MIGRATED")
[[ $got -eq 1 ]] || fail "expected one DatasetMigrated, got $got"
note "ok: one DatasetMigrated for a duplicate inside the announce window"
