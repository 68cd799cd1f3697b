#!/usr/bin/env bash
# Issue 4, test 5, durable replay progress:
#  A. a second `replay` with the same filters replays nothing (the Redis ledger);
#  B. a replay killed with SIGKILL halfway (slowed by --rate) and run again replays every
#     record exactly once in total, counted on the onboarding topic by the
#     ferry-replayed-from header;
#  C. the worst moment for a crash -- the broker acknowledged a record, the ledger does
#     not know yet (test hook FERRY_REPLAYER_TEST_CRASH=after-produce:N) -- leaves an
#     "interrupted" entry; the rerun finds the record on the topic, records it, and does
#     not produce it again;
#  D. the other side of that entry -- marked in progress, killed before producing
#     (before-produce:N) -- is not lost: the rerun finds it absent and produces it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replayer_lib.sh"

fill_dlq() { # N PREFIX : N records over the DLQ's partitions
    local i ev now
    now=$(now_ms)
    for ((i = 0; i < $1; i++)); do
        ev=$(make_event "$2-$i")
        dlq_put $((i % 4)) "$2-$i" "$ev" s3-not-found $((now - 60000 + i)) 0
    done
}
mine() { replayed_from "$FERRY_TOPIC_ONBOARD" | grep -cF "$FERRY_TOPIC_DLQ/" || true; }

# --- A: the second run replays nothing --------------------------------------------------
export FERRY_TOPIC_DLQ="$TOPIC_PREFIX.dlq-a"
fill_dlq 6 rp5a
rp replay --error-class s3-not-found >"$WORK/a1.txt" || fail "A: first replay exited $?"
grep -q ': 6 replayed$' "$WORK/a1.txt" || fail "A: $(tail -1 "$WORK/a1.txt")"
before=$(end_offsets "$FERRY_TOPIC_ONBOARD")
rp replay --error-class s3-not-found >"$WORK/a2.txt" || fail "A: second replay exited $?"
grep -q ': 0 replayed, 6 already replayed$' "$WORK/a2.txt" || fail "A: second run: $(tail -1 "$WORK/a2.txt")"
[[ "$(end_offsets "$FERRY_TOPIC_ONBOARD")" == "$before" ]] || fail "A: the second run produced"
exactly_once || fail "A: not exactly once"
note "A ok: second run replayed nothing"

# --- B: kill -9 halfway, rerun ------------------------------------------------------------
export FERRY_TOPIC_DLQ="$TOPIC_PREFIX.dlq-b"
fill_dlq 12 rp5b
"$REPLAYER" replay --rate 4 >"$WORK/b1.txt" 2>>"$WORK/replayer.log" &
pid=$!; PIDS+=("$pid")
# Its own output says when a record was acknowledged (one flushed line per record).
wait_until 30 bash -c "[[ \$(grep -c '^replayed ' '$WORK/b1.txt') -ge 4 ]]" \
    || fail "B: the slow replay did not get going"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
n_killed=$(mine)
note "B: killed after $n_killed of 12 records"
(( n_killed >= 4 && n_killed < 12 )) || fail "B: kill landed at $n_killed (want halfway)"
rp list >"$WORK/b-list.txt" || fail "B: list exited $?"
grep -q ' ready ' "$WORK/b-list.txt" || fail "B: nothing left to replay after the kill?"
rp replay >"$WORK/b2.txt" || { cat "$WORK/b2.txt" >&2; fail "B: rerun exited non-zero"; }
cat "$WORK/b2.txt" >&2
exactly_once || fail "B: not exactly once after kill -9 and rerun"
[[ $(ledger_count) -eq 12 ]] || fail "B: $(ledger_count) ledger entries, want 12"
redis-cli -u "$FERRY_REDIS_URL" --scan --pattern "ferry:replay:{$FERRY_TOPIC_DLQ}:*" |
    grep -v ':lock$' | while read -r k; do
        [[ "$(redis-cli -u "$FERRY_REDIS_URL" --raw GET "$k")" == done* ]] || fail "B: $k not done"
    done
note "B ok: killed at $n_killed/12, rerun completed, each exactly once"

# --- C: crash between the broker's ack and the ledger -------------------------------------
export FERRY_TOPIC_DLQ="$TOPIC_PREFIX.dlq-c"
fill_dlq 5 rp5c
rc=0
FERRY_REPLAYER_TEST_CRASH=after-produce:3 "$REPLAYER" replay >"$WORK/c1.txt" 2>>"$WORK/replayer.log" || rc=$?
[[ $rc -eq 137 ]] || fail "C: the crash hook did not fire (exit $rc)"
[[ $(mine) -eq 3 ]] || fail "C: $(mine) records produced before the crash, want 3"
rp list >"$WORK/c-list.txt" || fail "C: list exited $?"
cat "$WORK/c-list.txt" >&2
[[ $(grep -c ' interrupted ' "$WORK/c-list.txt") -eq 1 ]] || fail "C: list shows no interrupted record"
rp replay >"$WORK/c2.txt" || { cat "$WORK/c2.txt" >&2; fail "C: rerun exited non-zero"; }
cat "$WORK/c2.txt" >&2
grep -q '^recovered  [0-9]*:[0-9]*  rp5c-[0-9]*: already on ' "$WORK/c2.txt" || fail "C: no recovery reported"
grep -q ': 2 replayed, 2 already replayed, 1 recovered$' "$WORK/c2.txt" || fail "C: $(tail -1 "$WORK/c2.txt")"
exactly_once || fail "C: not exactly once after a crash between ack and ledger"
[[ $(grep -c ' interrupted ' <(rp list)) -eq 0 ]] || fail "C: still interrupted after the rerun"
note "C ok: the acknowledged-but-unrecorded record was found, not produced twice"

# --- D: crash after the ledger said "in progress", before producing -----------------------
export FERRY_TOPIC_DLQ="$TOPIC_PREFIX.dlq-d"
fill_dlq 4 rp5d
rc=0
FERRY_REPLAYER_TEST_CRASH=before-produce:2 "$REPLAYER" replay >"$WORK/d1.txt" 2>>"$WORK/replayer.log" || rc=$?
[[ $rc -eq 137 ]] || fail "D: the crash hook did not fire (exit $rc)"
[[ $(mine) -eq 1 ]] || fail "D: $(mine) records produced before the crash, want 1"
[[ $(grep -c ' interrupted ' <(rp list)) -eq 1 ]] || fail "D: list shows no interrupted record"
rp replay >"$WORK/d2.txt" || { cat "$WORK/d2.txt" >&2; fail "D: rerun exited non-zero"; }
grep -q ': 3 replayed, 1 already replayed$' "$WORK/d2.txt" || fail "D: $(tail -1 "$WORK/d2.txt")"
exactly_once || fail "D: the record marked in progress was lost or duplicated"
note "D ok: the record marked but never produced was produced by the rerun, once"
