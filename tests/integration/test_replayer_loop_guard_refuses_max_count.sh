#!/usr/bin/env bash
# Issue 4, test 4, the loop guard with a real worker: an event whose source bucket never
# appears fails, is replayed, fails again... The worker carries ferry-replay-count into
# each new DLQ record, and once it reaches replay.max_count (2 here) `replay` refuses the
# record (exit 1, nothing produced) until --force. With the default max (3) the record
# at count 3 is refused too.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replayer_lib.sh"

DS="rp4-loop-$RANDOM"
MISSING=$(bucket rp4-never); DST_B=$(bucket rp4-dst)
"$S3TOOL" mb "$DST_B" >/dev/null
"$PRODUCER" publish --dataset "$DS" --source "s3://$MISSING/d/" --target "s3://$DST_B/d/" \
    >/dev/null 2>&1 || fail "publish"
start_worker w1 >/dev/null

# dlq_counts : the ferry-replay-count of each DLQ record, in order
dlq_counts() {
    kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_DLQ" -e -q -f '%h\n' 2>/dev/null |
        grep -o 'ferry-replay-count=[^,]*' | cut -d= -f2 | sort -n | tr '\n' ' ' | sed 's/ $//'
}
wait_dlq() { # N : wait until the DLQ holds N records
    wait_until 45 bash -c "[[ \$(kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k\n' 2>/dev/null | grep -c .) -ge $1 ]]" \
        || { cat "$WORK/w1.log" >&2; fail "the DLQ never reached $1 records (has $(dlq_count))"; }
}
export FERRY_REPLAY_MAX_COUNT=2

wait_dlq 1
rp replay --dataset "$DS" >"$WORK/r1.txt" || fail "replay 1 exited $?"
grep -q '(replay count 1)' "$WORK/r1.txt" || fail "replay 1: $(cat "$WORK/r1.txt")"
wait_dlq 2
[[ "$(dlq_counts)" == "0 1" ]] || fail "the worker did not carry the replay count: [$(dlq_counts)]"
rp replay --dataset "$DS" >"$WORK/r2.txt" || fail "replay 2 exited $?"
grep -q '(replay count 2)' "$WORK/r2.txt" || fail "replay 2: $(cat "$WORK/r2.txt")"
wait_dlq 3
[[ "$(dlq_counts)" == "0 1 2" ]] || fail "DLQ replay counts: [$(dlq_counts)]"

# At the max: refused, listed, nothing produced, exit 1.
before=$(end_offsets "$FERRY_TOPIC_ONBOARD")
rc=0; rp replay --dataset "$DS" >"$WORK/r3.txt" || rc=$?
cat "$WORK/r3.txt" >&2
[[ $rc -eq 1 ]] || fail "replay at the max exited $rc, want 1"
grep -q "^refused    [0-9]*:[0-9]*  $DS: replayed 2 times already (replay.max_count=2)" "$WORK/r3.txt" \
    || fail "the refusal is not listed"
grep -q ': 0 replayed, 2 already replayed, 1 refused$' "$WORK/r3.txt" || fail "summary: $(tail -1 "$WORK/r3.txt")"
[[ "$(end_offsets "$FERRY_TOPIC_ONBOARD")" == "$before" ]] || fail "a refused record was produced"
rp list --dataset "$DS" | has ' at-max ' || fail "list does not show the record at-max"

# --force replays it anyway (count 3); it fails again.
rp replay --dataset "$DS" --force >"$WORK/r4.txt" || fail "replay --force exited $?"
grep -q '(replay count 3)' "$WORK/r4.txt" || fail "forced replay: $(cat "$WORK/r4.txt")"
wait_dlq 4
[[ "$(dlq_counts)" == "0 1 2 3" ]] || fail "DLQ replay counts: [$(dlq_counts)]"

# Default replay.max_count is 3: the new record (count 3) is refused without any setting.
unset FERRY_REPLAY_MAX_COUNT
rc=0; rp replay --dataset "$DS" >"$WORK/r5.txt" || rc=$?
[[ $rc -eq 1 ]] && grep -q 'replayed 3 times already (replay.max_count=3)' "$WORK/r5.txt" \
    || fail "default max: rc=$rc $(cat "$WORK/r5.txt")"
[[ $(replayed_from "$FERRY_TOPIC_ONBOARD" | grep -c .) -eq 3 ]] || fail "expected exactly 3 replays in total"
note "ok: replayed twice, refused at replay.max_count, forced once, refused at the default"
