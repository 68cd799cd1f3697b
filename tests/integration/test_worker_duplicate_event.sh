#!/usr/bin/env bash
# Scenario 2: two workers, one dataset event delivered twice (on two partitions, so both
# may run it at once): exactly one migration runs; the other waits for the lease and then
# finds it done (a no-op). One DatasetMigrated, every object copied exactly once.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket dup-src); DST_B=$(bucket dup-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 300 4000)
"$S3TOOL" mb "$DST_B"
DS=dup-$RANDOM
ARGS=(-X log.level=debug -X copy.max_in_flight=4 -X copy.max_requests_per_second=100)
start_worker d1 "${ARGS[@]}"
start_worker d2 "${ARGS[@]}"
# Produce once the group is stable (the two workers' latest assignments add up to all
# partitions of both subscribed topics), so the two copies of the event land on
# different workers and race for real.
wait_until 60 group_settled_on d1 d2 || fail "group did not settle over d1 and d2"
produce_duplicate "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
wait_until 120 status_is "$DS" done || fail "not done"
wait_until 30 grep -q "already migrated" "$WORK/d1.log" "$WORK/d2.log" || fail "the duplicate was not recognised as done"
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
runs=$(cat "$WORK"/d1.log "$WORK"/d2.log | grep -c '"msg":"migrating ')
[[ $runs -eq 1 ]] || fail "$runs migrations ran"
copies=$(copied_count "$WORK"/d1.log "$WORK"/d2.log)
[[ $copies -eq $N ]] || fail "$copies copies for $N objects"
# Committed past both copies of the event: each finished (one migrated, one found it
# done) and no redelivery can add another DatasetMigrated.
wait_committed 60
[[ $(count_messages "$FERRY_TOPIC_MIGRATED") -eq 1 ]] || fail "expected one DatasetMigrated, got $(count_messages "$FERRY_TOPIC_MIGRATED")"
waited=$(cat "$WORK"/d1.log "$WORK"/d2.log | grep -c 'waiting for its lease' || true)
note "ok: one migration, $copies copies, duplicate waited for the lease: $waited time(s)"
