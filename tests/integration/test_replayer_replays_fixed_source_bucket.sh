#!/usr/bin/env bash
# Issue 4, test 1, end to end with a real worker: a migration fails because its source
# bucket is missing -> `list` shows it with class s3-not-found and the S3 message -> the
# bucket is created and filled -> `replay --dataset X` re-produces exactly that event
# (key and value byte-identical, ferry-replay-count 1) -> the worker migrates it (Redis
# state done, every object copied) -> `list` shows it replayed and no longer offers it,
# while the other failed dataset is still offered.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replayer_lib.sh"

SRC_B=$(bucket rp1-src); DST_B=$(bucket rp1-dst); OTHER_B=$(bucket rp1-missing)
X="rp1-x-$RANDOM"; Y="rp1-y-$RANDOM"
"$S3TOOL" mb "$DST_B" >/dev/null

"$PRODUCER" publish --dataset "$X" --source "s3://$SRC_B/data/" --target "s3://$DST_B/x/" \
    >/dev/null 2>&1 || fail "publish $X"
"$PRODUCER" publish --dataset "$Y" --source "s3://$OTHER_B/data/" --target "s3://$DST_B/y/" \
    >/dev/null 2>&1 || fail "publish $Y"
start_worker w1 >/dev/null
wait_until 45 bash -c "[[ \$(kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k\n' 2>/dev/null | grep -c .) -ge 2 ]]" \
    || { cat "$WORK/w1.log" >&2; fail "the two failures never reached the DLQ"; }
[[ "$(state_field "$X" status)" == failed ]] || fail "state of $X: $(state_field "$X" status)"

# list: the failure, its class and why.
rp list >"$WORK/list1.txt" || fail "list exited $?"
cat "$WORK/list1.txt" >&2
row=$(grep " $X " "$WORK/list1.txt") || fail "list has no row for $X"
grep -q " s3-not-found " <<<"$row" || fail "row for $X lacks the class: $row"
grep -q "NoSuchBucket" <<<"$row" || fail "row for $X lacks the S3 message: $row"
grep -q " ready " <<<"$row" || fail "$X is not offered for replay: $row"
grep -qE '^ +2  s3-not-found$' "$WORK/list1.txt" || fail "totals per class missing"
XPOS=$(awk '{print $1}' <<<"$row")

# Fix the cause, then replay exactly X.
"$S3TOOL" mb "$SRC_B" >/dev/null
"$S3TOOL" seed "s3://$SRC_B/data/" --count 25 --max-size 5000 --seed 3 >"$WORK/seed.txt"
read -r n_obj n_bytes <"$WORK/seed.txt"
before=$(end_offsets "$FERRY_TOPIC_ONBOARD")
rp replay --dataset "$X" >"$WORK/replay.txt" || { cat "$WORK/replay.txt" "$WORK/replayer.log" >&2; fail "replay exited non-zero"; }
cat "$WORK/replay.txt" >&2
grep -q "^replayed  $XPOS  $X -> $FERRY_TOPIC_ONBOARD" "$WORK/replay.txt" || fail "replay did not report $X"
grep -q ": 1 replayed$" "$WORK/replay.txt" || fail "expected exactly one replayed record"
[[ "$(replayed_from "$FERRY_TOPIC_ONBOARD")" == "$FERRY_TOPIC_DLQ/${XPOS/:/\/}" ]] \
    || fail "main topic holds replays: $(replayed_from "$FERRY_TOPIC_ONBOARD" | tr '\n' ' ')"
[[ "$before" != "$(end_offsets "$FERRY_TOPIC_ONBOARD")" ]] || fail "nothing reached the main topic"

# The replayed event is the original, byte for byte, with the replay count incremented.
read -r rpart roff < <(kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_ONBOARD" -e -q \
    -f '%p %o %h\n' | grep 'ferry-replayed-from=' | awk '{print $1, $2}')
kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_DLQ" -p "${XPOS%%:*}" -o "${XPOS##*:}" -c 1 -e -q -f '%k|%s' >"$WORK/dlq.bin"
kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_ONBOARD" -p "$rpart" -o "$roff" -c 1 -e -q -f '%k|%s' >"$WORK/replayed.bin"
cmp -s "$WORK/dlq.bin" "$WORK/replayed.bin" || fail "replayed key/value differ from the DLQ record"
hdrs=$(kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_ONBOARD" -p "$rpart" -o "$roff" -c 1 -e -q -f '%h')
grep -q 'ferry-replay-count=1' <<<"$hdrs" || fail "replay count not incremented: $hdrs"
grep -q 'ferry-error-class' <<<"$hdrs" && fail "DLQ headers leaked into the replayed event: $hdrs"

# The worker migrates it.
wait_until 45 status_is "$X" done || { cat "$WORK/w1.log" >&2; fail "$X was not migrated after the replay"; }
[[ "$(state_field "$X" objects_done)" == "$n_obj" ]] || fail "objects_done $(state_field "$X" objects_done) != $n_obj"
"$S3TOOL" compare "s3://$SRC_B/data/" "s3://$DST_B/x/" >/dev/null || fail "target differs from source"
# Committed past the replayed event: its outcome (done, not dead-lettered) is final.
wait_committed 60
[[ $(dlq_count) -eq 2 ]] || fail "the replayed event failed again: $(dlq_count) DLQ records"

# list no longer offers X; Y is still offered.
rp list >"$WORK/list2.txt" || fail "list exited $?"
cat "$WORK/list2.txt" >&2
grep " $X " "$WORK/list2.txt" | has " replayed " || fail "list does not show $X replayed"
grep " $Y " "$WORK/list2.txt" | has " ready " || fail "list no longer offers $Y"
[[ "$(selected --ready)" != *"$XPOS"* ]] || fail "list --ready still offers $X"
rp list --json --dataset "$X" | has "\"status\":\"replayed\",\"replayed\":{\"at\"" \
    || fail "list --json lacks the replay record for $X"
rp replay --dataset "$X" --dry-run >"$WORK/again.txt" || fail "dry run exited $?"
grep -q ": 0 would be replayed, 1 already replayed$" "$WORK/again.txt" || fail "a second replay would replay $X again: $(cat "$WORK/again.txt")"
[[ "$(ledger_get "$XPOS")" == "done run="*" to=$FERRY_TOPIC_ONBOARD/$rpart/$roff" ]] \
    || fail "ledger entry: $(ledger_get "$XPOS")"
note "ok: $X failed (s3-not-found), was replayed once and migrated $n_obj objects"
