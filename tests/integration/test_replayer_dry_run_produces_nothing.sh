#!/usr/bin/env bash
# Issue 4, test 2: `replay --dry-run` prints what it would replay and changes nothing --
# the onboarding topic's end offsets, the DLQ and the Redis ledger are the same before and
# after. (Then a real replay does move the end offsets, so the comparison can fail.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replayer_lib.sh"

now=$(now_ms)
for i in 1 2 3; do
    ev=$(make_event "rp2-ds$i")
    dlq_put $((i % 2)) "rp2-ds$i" "$ev" s3-not-found $((now - i * 1000)) 0
done
ev=$(make_event rp2-looping)
dlq_put 1 rp2-looping "$ev" validation "$now" 3   # at replay.max_count: would be refused

onboard_before=$(end_offsets "$FERRY_TOPIC_ONBOARD")
dlq_before=$(end_offsets "$FERRY_TOPIC_DLQ")
[[ $(count_messages "$FERRY_TOPIC_ONBOARD") -eq 4 ]] || fail "setup: expected the 4 original events"

rp replay --dry-run >"$WORK/dry.txt" || fail "dry run exited $?"
cat "$WORK/dry.txt" >&2
[[ $(grep -c '^would replay  ' "$WORK/dry.txt") -eq 3 ]] || fail "expected 3 'would replay' lines"
grep -q '^would refuse  [0-9]*:[0-9]*  rp2-looping: replayed 3 times already' "$WORK/dry.txt" \
    || fail "dry run does not say the looping record would be refused"
grep -q '^dry run: 4 selected .*: 3 would be replayed, 1 refused$' "$WORK/dry.txt" || fail "summary"
rp replay --dry-run --json >"$WORK/dry.json" || fail "dry run --json exited $?"
[[ $(grep -c '"outcome": "would-replay"' "$WORK/dry.json") -eq 3 ]] || fail "json dry run"

[[ "$(end_offsets "$FERRY_TOPIC_ONBOARD")" == "$onboard_before" ]] \
    || fail "dry run produced: $onboard_before -> $(end_offsets "$FERRY_TOPIC_ONBOARD")"
[[ "$(end_offsets "$FERRY_TOPIC_DLQ")" == "$dlq_before" ]] || fail "the DLQ changed"
[[ $(ledger_count) -eq 0 ]] || fail "dry run wrote $(ledger_count) ledger entries"
redis-cli -u "$FERRY_REDIS_URL" --raw EXISTS "ferry:replay:{$FERRY_TOPIC_DLQ}:lock" | has -x 0 \
    || fail "dry run left a lock"
[[ -z "$(replayed_from "$FERRY_TOPIC_ONBOARD")" ]] || fail "a replayed event appeared"

# The same command without --dry-run does change them: the check above can fail.
rc=0; rp replay >"$WORK/real.txt" || rc=$?
[[ $rc -eq 1 ]] || fail "real replay with one refused record should exit 1, got $rc"
[[ "$(end_offsets "$FERRY_TOPIC_ONBOARD")" != "$onboard_before" ]] || fail "real replay produced nothing"
[[ $(replayed_from "$FERRY_TOPIC_ONBOARD" | grep -c .) -eq 3 ]] || fail "real replay: expected 3 events"
[[ $(ledger_count) -eq 3 ]] || fail "real replay: expected 3 ledger entries, got $(ledger_count)"
note "ok: dry run changed nothing; the real run replayed 3 and refused 1"
