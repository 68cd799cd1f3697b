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
wait_until 60 group_settled_on a1 a2 || fail "group did not settle over a1 and a2"
produce_duplicate "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
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
