# shellcheck shell=bash
# Shared by the shell integration tests (sourced). Each test gets unique topics, group,
# buckets and dataset names, so tests can share one stack and run in any order.
set -euo pipefail

BIN=${FERRY_BIN_DIR:?FERRY_BIN_DIR not set (run through ctest)}
SRC=${FERRY_SRC_DIR:?}
PRODUCER=$BIN/producer/ferry-producer
WORKER=$BIN/worker/ferry-worker
REPLAYER=$BIN/dlq-replayer/ferry-dlq-replayer
S3TOOL=$BIN/tests/tools/ferry-s3tool

# Same rule as integ_env.h: skip by hand, fail under CI.
for v in FERRY_KAFKA_BROKERS FERRY_REDIS_URL FERRY_S3_ENDPOINT AWS_ACCESS_KEY_ID; do
    if [[ -z "${!v:-}" ]]; then
        if [[ "${CI:-}" == true ]]; then echo "$v not set but CI=true" >&2; exit 1; fi
        echo "SKIP: $v not set (eval \"\$(scripts/stack env)\")" >&2; exit 77
    fi
done

RUN_ID=$(date +%s)-$$-$RANDOM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-test.XXXXXX")
# Per-test Kafka names: a test never sees another test's events or offsets.
TOPIC_PREFIX="ferry.test.$RUN_ID"
export FERRY_TOPIC_ONBOARD="$TOPIC_PREFIX.onboard"
export FERRY_TOPIC_DLQ="$TOPIC_PREFIX.onboard.dlq"
export FERRY_TOPIC_MIGRATED="$TOPIC_PREFIX.migrated"
export FERRY_WORKER_GROUP="ferry-test-$RUN_ID"
export FERRY_LOG_FORMAT=json
# Tests want fast group joins and quick failure detection.
COMMON_X=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*" >&2; }

# bucket NAME -> a unique, valid bucket name (lowercase, <= 63)
bucket() { echo "$1-$(echo "$RUN_ID" | tr -cd '0-9a-z-' | tail -c 30)"; }

start_worker() { # name, extra args... ; log to $WORK/<name>.log
    local name=$1; shift
    "$WORKER" run "${COMMON_X[@]}" -X worker.id="$name" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    PIDS+=($!)
    echo $!
}

# wait_until SECONDS CMD... : polls CMD every 0.2 s until it succeeds.
wait_until() {
    local secs=$1; shift
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        (( SECONDS < end )) || return 1
        sleep 0.2
    done
}

redis_cli() { redis-cli -u "$FERRY_REDIS_URL" --no-raw "$@" | tr -d '"'; }
state_field() { redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$1}:state" "$2"; }
status_is() { [[ "$(state_field "$1" status)" == "$2" ]]; }

# count_messages TOPIC -> number of messages currently in TOPIC
count_messages() {
    kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$1" -e -q -f '%k\n' 2>/dev/null | wc -l
}
