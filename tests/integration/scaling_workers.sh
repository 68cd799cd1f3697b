#!/usr/bin/env bash
# Scaling (issue 7): how throughput changes with 1, 2 and 4 worker processes, on a topic
# of 8 partitions, for (a) many datasets and (b) one large dataset fanned out in chunks;
# and (c) how long a new worker waits for its first partition under cooperative-sticky,
# and that a worker leaving does not stall the others. Correctness is asserted; speed is
# measured and printed (on a 2-core machine with the S3 server on the same host the gain
# is capped by the CPU everyone shares).
source "$(dirname "$0")/lib.sh"
TOPICTOOL=$BIN/tests/tools/ferry-topictool

SRC_B=$(bucket sc-src); "$S3TOOL" mb "$SRC_B" >/dev/null
DATASETS=8; PER=250; BIG=${FERRY_SCALING_BIG:-10000}
for ((d = 0; d < DATASETS; d++)); do
    "$S3TOOL" seed "s3://$SRC_B/many/d$d/" --count $PER --min-size 0 --max-size 4096 --seed $d > "$WORK/seed-$d.txt"
done
read -r BIG_N BIG_BYTES < <("$S3TOOL" seed "s3://$SRC_B/big/" --count "$BIG" --min-size 0 --max-size 1024 --seed 99)
note "seeded $DATASETS x $PER objects and one dataset of $BIG_N objects"

RESULTS=$WORK/results.txt
run_case() { # CASE WORKERS
    local case=$1 workers=$2 run="$1-$2w" t0 t1 objs=0 pids=() i d
    export FERRY_TOPIC_ONBOARD="$TOPIC_PREFIX.$run.onboard" FERRY_TOPIC_CHUNKS="$TOPIC_PREFIX.$run.chunk"
    export FERRY_TOPIC_DLQ="$TOPIC_PREFIX.$run.dlq" FERRY_TOPIC_MIGRATED="$TOPIC_PREFIX.$run.migrated"
    export FERRY_WORKER_GROUP="ferry-scaling-$RUN_ID-$run"
    "$TOPICTOOL" create "$FERRY_TOPIC_ONBOARD" 8 && "$TOPICTOOL" create "$FERRY_TOPIC_CHUNKS" 8 || fail "topics"
    ensure_topic "$FERRY_TOPIC_DLQ"; ensure_topic "$FERRY_TOPIC_MIGRATED"
    local dst; dst=$(bucket "sc-$run"); "$S3TOOL" mb "$dst" >/dev/null
    for ((i = 1; i <= workers; i++)); do
        start_worker "$run-w$i" -X fanout.min_objects=2000 -X fanout.chunk_objects=1000 \
            -X worker.concurrency=2 -X copy.max_in_flight=16
        pids+=("$LAST_PID")
    done
    for ((i = 1; i <= workers; i++)); do
        wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/$run-w$i.log" || fail "$run-w$i never joined"
    done
    # The clock starts once the group settled: every worker's latest rebalance is an
    # assignment and together they hold all 16 partitions (eager assignment).
    settled() {
        local i n=0 last
        for ((i = 1; i <= workers; i++)); do
            last=$(grep -o 'assigned [0-9]* partition\|revoked [0-9]* partition' "$WORK/$run-w$i.log" | tail -1)
            [[ $last == assigned* ]] || return 1
            n=$((n + $(tr -dc 0-9 <<<"$last")))
        done
        (( n == 16 ))
    }
    wait_until 60 settled || fail "$run: waited 60 s for the $workers worker(s) to hold all 16 partitions"
    t0=$(date +%s%N)
    local names=()
    if [[ $case == many ]]; then
        for ((d = 0; d < DATASETS; d++)); do
            names+=("sc-$RUN_ID-$run-d$d" ); publish "${names[-1]}" "s3://$SRC_B/many/d$d/" "s3://$dst/d$d/"
        done
        objs=$((DATASETS * PER))
    else
        names+=("sc-$RUN_ID-$run-big"); publish "${names[-1]}" "s3://$SRC_B/big/" "s3://$dst/big/"
        objs=$BIG_N
    fi
    for d in "${names[@]}"; do wait_until 600 status_is "$d" done || fail "$run: $d not done"; done
    t1=$(date +%s%N)
    for ((d = 0; d < ${#names[@]}; d++)); do
        if [[ $case == many ]]; then
            read -r n b < "$WORK/seed-$d.txt"
            assert_done_exact "${names[$d]}" "$n" "$b" "s3://$SRC_B/many/d$d/" "s3://$dst/d$d/"
        else
            assert_done_exact "${names[$d]}" "$BIG_N" "$BIG_BYTES" "s3://$SRC_B/big/" "s3://$dst/big/"
        fi
    done
    local busy; busy=$(grep -l '"msg":"\(migrating\|copying chunk\)' "$WORK/$run"-w*.log | wc -l)
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    local ms=$(( (t1 - t0) / 1000000 ))
    printf '%-6s %d worker(s): %6d ms  %7.1f objects/s  %5.2f datasets/s  (%d worker(s) did work)\n' \
        "$case" "$workers" "$ms" "$(bc -l <<<"$objs * 1000 / $ms")" "$(bc -l <<<"${#names[@]} * 1000 / $ms")" "$busy" | tee -a "$RESULTS" >&2
    (( workers == 1 || busy >= 2 )) || fail "$run: only $busy worker(s) did any work"
}
for w in 1 2 4; do run_case many "$w"; done
for w in 1 2 4; do run_case big "$w"; done

# (c) rebalance with cooperative-sticky
export FERRY_TOPIC_ONBOARD="$TOPIC_PREFIX.rb.onboard" FERRY_TOPIC_CHUNKS="$TOPIC_PREFIX.rb.chunk"
export FERRY_WORKER_GROUP="ferry-scaling-$RUN_ID-rb"
"$TOPICTOOL" create "$FERRY_TOPIC_ONBOARD" 8 && "$TOPICTOOL" create "$FERRY_TOPIC_CHUNKS" 8 || fail "topics"
COOP=(-X partition.assignment.strategy=cooperative-sticky -X copy.max_requests_per_second=100)
start_worker rb1 "${COOP[@]}"; p1=$LAST_PID
wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/rb1.log" || fail "rb1 never joined"
dst=$(bucket sc-rb); "$S3TOOL" mb "$dst" >/dev/null
DS="sc-$RUN_ID-rb"; publish "$DS" "s3://$SRC_B/many/d0/" "s3://$dst/d0/"
wait_until 60 status_is "$DS" running || fail "rebalance dataset did not start"
t0=$(date +%s%N); start_worker rb2 "${COOP[@]}"; p2=$LAST_PID
wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/rb2.log" || fail "rb2 never got a partition"
join_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
before=$(state_field "$DS" objects_done)
kill -TERM "$p2"; wait "$p2" || true
progressed() { (( $(state_field "$DS" objects_done) > before )) || status_is "$DS" done; }
wait_until 120 progressed || fail "waited 120 s for progress after rb2 left (objects_done still $before)"
after=$(state_field "$DS" objects_done)
wait_until 120 status_is "$DS" done || fail "waited 120 s for $DS to finish after rb2 left: the migration stalled"
printf 'rebalance: new worker got its first partition %d ms after starting (cooperative-sticky); progress continued while it left (%s -> %s objects)\n' \
    "$join_ms" "$before" "$after" | tee -a "$RESULTS" >&2
kill -TERM "$p1"; wait "$p1" || true
echo "=== scaling results ==="; cat "$RESULTS"
