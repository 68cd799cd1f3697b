#!/usr/bin/env bash
# The Kafka broker SIGKILLed and restarted (issue 8, reliability R9-style hard bounce):
#  A. during a loop of `ferry-producer publish` runs: every acked event is on the topic
#     (none lost); no event is on it twice (each publish is one idempotent producer, so
#     its internal retries must not duplicate); an unacked publish exits non-zero and is
#     counted (it may or may not have landed: its outcome is unknown to the caller).
#  B. during a `ferry-dlq-replayer replay --rate` run: after a rerun, every DLQ record is
#     on the onboarding topic exactly once (its ferry-replayed-from header once).
# Uses the shared stack's broker: `scripts/stack restart-service --kill kafka`.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replayer_lib.sh"

U=$(tr -cd 0-9 <<<"$RUN_ID" | tail -c 12)
N=${FERRY_KILL_EVENTS:-40}

# --- A: publish loop ------------------------------------------------------------------------
(
    for ((i = 1; i <= N; i++)); do
        if out=$("$PRODUCER" publish --json --dataset "kk-$U-$i" --source "s3://kk-src/$i/" \
                 --target "s3://kk-dst/$i/" -X message.timeout.ms=45000 2>>"$WORK/publish.log"); then
            echo "$i ack $out"
        else
            echo "$i fail rc=$?"
        fi
    done
) >"$WORK/acks.txt" &
LOOP=$!
PIDS+=("$LOOP")
wait_until 60 bash -c "(( \$(grep -c ' ack ' '$WORK/acks.txt') >= 8 ))" || fail "publishing did not start"
"$SRC/scripts/stack" restart-service --kill kafka >&2 || fail "kafka restart failed"
wait "$LOOP" || true

acked=$(grep -c ' ack ' "$WORK/acks.txt" || true)
failed=$(grep -c ' fail ' "$WORK/acks.txt" || true)
(( acked + failed == N )) || fail "A: $acked acked + $failed failed != $N"
kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_ONBOARD" -e -q -f '%k\n' >"$WORK/keys.txt" 2>/dev/null
lost=0
while read -r i _; do
    grep -qx "kk-$U-$i" "$WORK/keys.txt" || { echo "lost: kk-$U-$i" >&2; lost=$((lost + 1)); }
done < <(grep ' ack ' "$WORK/acks.txt")
on_topic=$(grep -c . "$WORK/keys.txt" || true)
distinct=$(sort -u "$WORK/keys.txt" | grep -c . || true)
dups=$((on_topic - distinct))
unacked_landed=$(( distinct - acked ))
note "A: $N publishes, $acked acked, $failed failed; on topic $on_topic ($distinct distinct, $dups duplicates, $unacked_landed unacked-but-landed)"
(( lost == 0 )) || fail "A: $lost acked event(s) lost"
(( dups == 0 )) || fail "A: $dups duplicate(s) (idempotent producer)"
(( acked >= N / 2 )) || fail "A: only $acked of $N acked: the producer did not ride out the restart"

# --- B: replay --rate, broker killed mid-run, rerun ----------------------------------------
M=24
now=$(now_ms)
evs=()
for k in 0 1 2 3; do evs+=("$(make_event "kr-$U-$k")"); done
for ((i = 0; i < M; i++)); do
    dlq_put $((i % 4)) "kr-$U-$((i % 4))" "${evs[$((i % 4))]}" s3-not-found $((now - 1000 + i)) 0
done
[[ $(dlq_count) -eq $M ]] || fail "B: $(dlq_count) DLQ records, expected $M"
mine() { replayed_from "$FERRY_TOPIC_ONBOARD" | grep -c . || true; }
rp replay --rate 4 -X message.timeout.ms=45000 >"$WORK/r1.txt" 2>&1 &
RP=$!
PIDS+=("$RP")
wait_until 30 bash -c "(( \$(kcat -C -b '$FERRY_KAFKA_BROKERS' -t '$FERRY_TOPIC_ONBOARD' -e -q -f '%h\n' 2>/dev/null | grep -c ferry-replayed-from=) >= 4 ))" \
    || fail "B: replay did not start"
"$SRC/scripts/stack" restart-service --kill kafka >&2 || fail "kafka restart failed"
set +e; wait "$RP"; rc1=$?; set -e
n1=$(mine)
rp replay >"$WORK/r2.txt" 2>&1 || { cat "$WORK/r2.txt" >&2; fail "B: rerun failed"; }
replayed_from "$FERRY_TOPIC_ONBOARD" | sort >"$WORK/from.txt"
total=$(grep -c . "$WORK/from.txt" || true)
uniq_n=$(sort -u "$WORK/from.txt" | grep -c . || true)
expected=$(dlq_positions | sed "s|^|$FERRY_TOPIC_DLQ/|; s|:|/|" | sort)
note "B: first run exit $rc1 with $n1 replayed across the kill; after the rerun $total on the topic, $uniq_n distinct, of $M"
(( total == M && uniq_n == M )) || fail "B: not exactly once: $total records, $uniq_n distinct, expected $M"
missing=$(comm -23 <(echo "$expected") <(sort -u "$WORK/from.txt") | grep -c . || true)
(( missing == 0 )) || { echo "$expected" | head -3 >&2; head -3 "$WORK/from.txt" >&2; fail "B: $missing DLQ record(s) never replayed"; }
# ASan/UBSan builds: any sanitizer report in any process's log fails the test.
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "ok: A $acked/$N acked, 0 lost, 0 duplicates; B $M/$M replayed exactly once across a broker SIGKILL"
