#!/usr/bin/env bash
# Issue 4, test 3: out of a DLQ holding several datasets and error classes, spread over
# partitions and hours, each filter -- --dataset (exact and glob, repeated), --error-class,
# --since/--until (ISO-8601 with Z or an offset, and relative), --partition, and their
# combinations -- selects exactly the right records in list, inspect and replay, and
# replay (with --limit) produces exactly those.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replayer_lib.sh"

# position  dataset        class               failed at (UTC)
#   0:0     sales.orders   s3-not-found        2025-06-01 01:00
#   0:1     sales.returns  validation          2025-06-01 02:00
#   1:0     hr.people      s3-not-found        2025-06-01 03:00
#   2:0     sales.orders   retries-exhausted   2025-06-01 04:00
#   3:0     junk.ds        decode (value: not an event at all)   2025-06-01 05:00
#   3:1     recent.ds      s3-auth             10 minutes ago
t() { iso_ms "2025-06-01T0$1:00:00Z"; }
dlq_put 0 sales.orders "$(make_event sales.orders)" s3-not-found "$(t 1)" 0
dlq_put 0 sales.returns "$(make_event sales.returns)" validation "$(t 2)" 0
dlq_put 1 hr.people "$(make_event hr.people)" s3-not-found "$(t 3)" 0
dlq_put 2 sales.orders "$(make_event sales.orders)" retries-exhausted "$(t 4)" 1
head -c 300 /dev/urandom >"$WORK/garbage.bin"
dlq_put 3 junk.ds "0 0 $WORK/garbage.bin" decode "$(t 5)" 0 "decode: not an Avro event"
dlq_put 3 recent.ds "$(make_event recent.ds)" s3-auth "$(( $(now_ms) - 600000 ))" 0
[[ "$(dlq_positions | tr '\n' ' ')" == "0:0 0:1 1:0 2:0 3:0 3:1 " ]] || fail "setup: $(dlq_positions | tr '\n' ' ')"

expect() { # "positions" args...
    local want=$1 got; shift
    got=$(selected "$@")
    [[ "$got" == "$want" ]] || fail "list $*: got [$got], want [$want]"
}
expect "0:0 0:1 1:0 2:0 3:0 3:1"
expect "0:0 2:0"             --dataset sales.orders
expect "0:0 0:1 2:0"         --dataset 'sales.*'
expect "0:0 0:1 1:0 2:0"     --dataset 'sales.*' --dataset hr.people
expect "0:1 1:0"             --dataset '*.[pr]e*'
expect ""                    --dataset sales
expect "0:0 1:0"             --error-class s3-not-found
expect "0:0 1:0 3:1"         --error-class 's3-*'
expect "0:0 1:0 2:0"         --error-class s3-not-found --error-class retries-exhausted
expect "0:0"                 --dataset 'sales.*' --error-class s3-not-found
expect "0:1 1:0 2:0 3:0 3:1" --since 2025-06-01T02:00:00Z
expect "0:0"                 --until 2025-06-01T02:00:00Z
expect "0:1 1:0"             --since 2025-06-01T02:00:00Z --until 2025-06-01T04:00:00Z
expect "0:1 1:0"             --since 2025-06-01T04:00:00+02:00 --until '2025-06-01 04:00Z'
expect "0:0 0:1 1:0 2:0 3:0 3:1" --since 2025-06-01
expect "3:1"                 --since 1h
expect "0:0 0:1 1:0 2:0 3:0" --until 30m
expect "0:0 0:1"             --partition 0
expect "2:0"                 --partition 2 --dataset sales.orders
expect ""                    --partition 1 --dataset sales.orders

# Bad filters are usage errors (exit 2), not empty selections.
for bad in "--since yesterday" "--since 2025-06-01T02:00:00" "--partition x" \
           "--since 2h --until 3h" "--rate 5"; do
    rc=0; rp list $bad >/dev/null || rc=$?
    [[ $rc -eq 2 ]] || fail "list $bad exited $rc, want 2"
done

# Totals per error class, for the selection.
rp list --dataset 'sales.*' >"$WORK/list.txt" || fail "list exited $?"
cat "$WORK/list.txt" >&2
[[ $(grep -cE '^[0-9]+:[0-9]+ ' "$WORK/list.txt") -eq 3 ]] || fail "text list rows"
grep -q '^3 records in .* (dataset sales\.\*): 3 ready$' "$WORK/list.txt" || fail "totals line"
for c in s3-not-found validation retries-exhausted; do
    grep -qE "^ +1  $c$" "$WORK/list.txt" || fail "no total for $c"
done

# inspect by position and by dataset.
rp inspect 3:0 >"$WORK/inspect-junk.txt" || fail "inspect 3:0 exited $?"
grep -q '^event: cannot decode' "$WORK/inspect-junk.txt" || fail "inspect of garbage"
rp inspect 1:0 >"$WORK/inspect.txt" || fail "inspect 1:0 exited $?"
grep -qE '^  dataset +hr\.people$' "$WORK/inspect.txt" || fail "inspect: decoded dataset"
grep -qE '^  ferry-error-class +s3-not-found$' "$WORK/inspect.txt" || fail "inspect: headers"
[[ $(rp inspect --dataset sales.orders | grep -c '^record ') -eq 2 ]] || fail "inspect --dataset"
rc=0; rp inspect 1:5 >/dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "inspect of a missing record exited $rc"

# replay selects the same way: exactly 0:0, then with --limit the oldest of the rest.
rp replay --dataset 'sales.*' --error-class s3-not-found >"$WORK/r1.txt" || fail "replay 1"
[[ "$(replayed_from "$FERRY_TOPIC_ONBOARD" | sort | tr '\n' ' ')" == "$FERRY_TOPIC_DLQ/0/0 " ]] \
    || fail "replay 1 produced: $(replayed_from "$FERRY_TOPIC_ONBOARD" | tr '\n' ' ')"
rp replay --dataset 'sales.*' --limit 1 >"$WORK/r2.txt" || fail "replay 2"
grep -q ': 1 replayed, 1 already replayed, 1 left by --limit$' "$WORK/r2.txt" || fail "limit summary: $(tail -1 "$WORK/r2.txt")"
[[ "$(replayed_from "$FERRY_TOPIC_ONBOARD" | sort | tr '\n' ' ')" == "$FERRY_TOPIC_DLQ/0/0 $FERRY_TOPIC_DLQ/0/1 " ]] \
    || fail "replay 2 produced: $(replayed_from "$FERRY_TOPIC_ONBOARD" | tr '\n' ' ')"
expect "2:0" --dataset 'sales.*' --ready
note "ok: every filter selected exactly its records"
