#!/usr/bin/env bash
# Issue 4, test 6: `replay --rate 10` of 20 records takes at least 1.9 s (the first goes at
# once, then one per 100 ms), measured twice over the run: by the wall clock around the
# command, and by the broker timestamps of the 20 replayed events (their span, and no
# 1-second window holding more than 10 plus four for a stall under load). Unlimited, the same 20 events
# span a fraction of that -- which the last part checks, so the test can fail.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replayer_lib.sh"

now=$(now_ms)
ev=$(make_event rp6-ds)
for i in $(seq 0 19); do dlq_put $((i % 4)) rp6-ds "$ev" s3-not-found $((now - 1000 + i)) 0; done

t0=$(date +%s%N)
rp replay --rate 10 >"$WORK/r.txt" || { cat "$WORK/r.txt" >&2; fail "replay exited non-zero"; }
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q ': 20 replayed$' "$WORK/r.txt" || fail "$(tail -1 "$WORK/r.txt")"
note "20 records at --rate 10 took $elapsed_ms ms"
(( elapsed_ms >= 1800 )) || fail "too fast: $elapsed_ms ms for 20 records at 10/s"
(( elapsed_ms < 60000 )) || fail "far too slow: 20 records at 10/s took $elapsed_ms ms (bound 60 s)"

# The broker's view: CreateTime of each replayed event (ms), sorted.
kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_ONBOARD" -e -q -f '%T %h\n' |
    grep "ferry-replayed-from=$FERRY_TOPIC_DLQ/" | awk '{print $1}' | sort -n >"$WORK/ts.txt"
[[ $(wc -l <"$WORK/ts.txt") -eq 20 ]] || fail "expected 20 replayed events, got $(wc -l <"$WORK/ts.txt")"
span=$(( $(tail -1 "$WORK/ts.txt") - $(head -1 "$WORK/ts.txt") ))
note "broker timestamps span $span ms"
(( span >= 1800 )) || fail "the replayed events span only $span ms"
max_in_window=$(awk '{t[NR]=$1} END {m=0; for (i=1;i<=NR;i++) {c=0; for (j=i;j<=NR && t[j]<t[i]+1000;j++) c++; if (c>m) m=c}; print m}' "$WORK/ts.txt")
# 10 per second plus room for a scheduling stall under load; unlimited puts all 20 in one.
(( max_in_window <= 14 )) || fail "$max_in_window events within one second of broker time at --rate 10 (at most 14 allowed)"

# Without --rate the same 20 records go out much faster (so the checks above measure the
# limiter, not a slow broker). Compared by broker timestamps: process start-up and the
# producer's first connection are not part of either span.
export FERRY_TOPIC_DLQ="$TOPIC_PREFIX.dlq-unlimited"
for i in $(seq 0 19); do dlq_put $((i % 4)) rp6-ds "$ev" s3-not-found $((now + i)) 0; done
rp replay >"$WORK/u.txt" || fail "unlimited replay exited non-zero"
kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_ONBOARD" -e -q -f '%T %h\n' |
    grep "ferry-replayed-from=$FERRY_TOPIC_DLQ/" | awk '{print $1}' | sort -n >"$WORK/ts-u.txt"
[[ $(wc -l <"$WORK/ts-u.txt") -eq 20 ]] || fail "unlimited: $(wc -l <"$WORK/ts-u.txt") events"
fast=$(( $(tail -1 "$WORK/ts-u.txt") - $(head -1 "$WORK/ts-u.txt") ))
note "unlimited: the same 20 events span $fast ms"
(( fast < 1800 )) || fail "unlimited replay spans $fast ms, not under the 1800 ms the limited one must take: the rate check proves nothing"
