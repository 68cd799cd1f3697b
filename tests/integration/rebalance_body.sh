# shellcheck shell=bash
# Scenario 4 body, sourced by test_worker_rebalance_{eager,cooperative}.sh with STRATEGY
# set: adding a second worker mid-migration does not restart finished work and does not
# lose the event.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket rb-src); DST_B=$(bucket rb-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 800 4000)
"$S3TOOL" mb "$DST_B"
DS=rb-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
ARGS=(-X "partition.assignment.strategy=$STRATEGY" -X log.level=debug -X copy.max_in_flight=4
      -X copy.page_size=100 -X copy.max_requests_per_second=100)
start_worker r1 "${ARGS[@]}" >/dev/null
wait_until 60 bash -c "(( \$(redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$DS}:state' objects_done || echo 0) >= 200 ))" \
    || fail "migration did not start"
start_worker r2 "${ARGS[@]}" >/dev/null
wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/r2.log" || fail "r2 never got partitions"
at_join=$(state_field "$DS" objects_done)
wait_until 120 status_is "$DS" done || { tail -5 "$WORK"/r*.log >&2; fail "not done after the rebalance"; }
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
copies=$(copied_count "$WORK"/r1.log "$WORK"/r2.log)
(( copies - N <= 8 )) || fail "$((copies - N)) re-copies: finished work was redone"
# Committed past the event (and any chunk): its DatasetMigrated was produced before the
# offset was stored, and no redelivery can add another.
wait_committed 60
[[ $(count_messages "$FERRY_TOPIC_MIGRATED") -eq 1 ]] || fail "expected one DatasetMigrated, got $(count_messages "$FERRY_TOPIC_MIGRATED")"
(( $(count_messages "$FERRY_TOPIC_DLQ") == 0 )) || fail "something was dead-lettered"
moved=$(cat "$WORK"/r1.log "$WORK"/r2.log | grep -c 'revoked while its event' || true)
note "ok ($STRATEGY): second worker joined at $at_join/$N, in-flight event moved: $moved, copies $copies"
