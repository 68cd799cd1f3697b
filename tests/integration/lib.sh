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

# FERRY_TEST_S3 picks the S3 server behind FERRY_S3_ENDPOINT: s3proxy (default) or moto
# (the stack's FERRY_S3_MOTO_* service); FERRY_S3_ENDPOINT_2 stays S3Proxy. Same rule as
# integ_select_s3() in integ_env.h. ctest runs the core tests once per server.
export FERRY_TEST_S3=${FERRY_TEST_S3:-s3proxy}
case "$FERRY_TEST_S3" in
    s3proxy) ;;
    moto)
        if [[ -z "${FERRY_S3_MOTO_ENDPOINT:-}" ]]; then
            if [[ "${CI:-}" == true ]]; then echo "FERRY_S3_MOTO_ENDPOINT not set but CI=true" >&2; exit 1; fi
            echo "SKIP: FERRY_S3_MOTO_ENDPOINT not set (FERRY_STACK_MOTO=1 scripts/stack up)" >&2; exit 77
        fi
        export FERRY_S3_ENDPOINT=$FERRY_S3_MOTO_ENDPOINT FERRY_S3_REGION=$FERRY_S3_MOTO_REGION \
               AWS_ACCESS_KEY_ID=$FERRY_S3_MOTO_ACCESS_KEY_ID \
               AWS_SECRET_ACCESS_KEY=$FERRY_S3_MOTO_SECRET_ACCESS_KEY
        unset AWS_SESSION_TOKEN ;;
    *) echo "FERRY_TEST_S3=$FERRY_TEST_S3: expected s3proxy or moto" >&2; exit 1 ;;
esac

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
export FERRY_TOPIC_CHUNKS="$TOPIC_PREFIX.chunk"
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
# has GREP_ARGS...: `grep -q` that reads all its input. Under pipefail, `cmd | grep -q X`
# fails whenever grep exits at the first match while cmd is still writing: cmd dies of
# SIGPIPE (curl: exit 23 on a long /metrics page) and the pipeline is false although X
# was there -- test_s3_outage_limit failed so in CI's first run of 3 December.
has() { grep "$@" >/dev/null; }
note() { echo "--- $*" >&2; }

# bucket NAME -> a unique, valid bucket name (lowercase, <= 63)
bucket() { echo "$1-$(echo "$RUN_ID" | tr -cd '0-9a-z-' | tail -c 30)"; }

# start_worker NAME [ARGS...]: runs a worker in the background (id NAME unless ARGS set
# worker.id), logging to $WORK/NAME.log; its pid is left in LAST_PID. Not in a $(...):
# the worker must be this shell's child so that `wait` and the cleanup reach it.
start_worker() {
    local name=$1; shift
    "$WORKER" run "${COMMON_X[@]}" -X worker.id="$name" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
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

# holds_for SECONDS CMD... : CMD must succeed at every poll (every 0.2 s) for SECONDS --
# an invariant asserted over a stimulus that lasts (an outage, a hang); returns 1 at the
# first poll where it fails, so the caller's `|| fail` says what broke and when.
holds_for() {
    local secs=$1; shift
    local end=$((SECONDS + secs))
    while (( SECONDS < end )); do
        "$@" >/dev/null 2>&1 || return 1
        sleep 0.2
    done
}

# start_faultproxy UPSTREAM [ARGS...]: tests/tools/faultproxy.py in front of UPSTREAM
# (mode file $WORK/mode, counts $WORK/counts.json, output $WORK/proxy.out), waited for
# (Python took 9 s to start on a loaded machine); its endpoint is left in FAULTPROXY_EP.
start_faultproxy() {
    local upstream=$1; shift
    python3 "$SRC/tests/tools/faultproxy.py" --upstream "$upstream" --mode-file "$WORK/mode" \
        --port-file "$WORK/port" --counts "$WORK/counts.json" "$@" >"$WORK/proxy.out" 2>&1 &
    PIDS+=("$!")
    wait_until 60 test -s "$WORK/port" || fail "faultproxy did not start within 60 s: $(cat "$WORK/proxy.out")"
    FAULTPROXY_EP="http://127.0.0.1:$(cat "$WORK/port")"
}

# s3_curl ARGS...: a SigV4-signed request to an S3 server (curl's own signer), for what
# ferry-s3tool has no verb for; the URL is the last argument. Body unsigned.
s3_curl() {
    curl -s --aws-sigv4 "aws:amz:${FERRY_S3_REGION:-us-east-1}:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
# s3_put_random URL SIZE ALGO|none: PUTs SIZE random bytes (kept in $WORK/body) with
# x-amz-sdk-checksum-algorithm ALGO (moto computes and keeps the checksum); prints SIZE.
s3_put_random() {
    head -c "$2" /dev/urandom >"$WORK/body"
    local hdr=()
    [[ $3 == none ]] || hdr=(-H "x-amz-sdk-checksum-algorithm: $3")
    s3_curl -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' "${hdr[@]}" \
        --data-binary "@$WORK/body" "$1" && echo "$2"
}
# s3_head_sums URL: "name: value" of the object's ETag and x-amz-checksum-* headers
# (HEAD with x-amz-checksum-mode: ENABLED), names lowercase, quotes removed.
s3_head_sums() {
    s3_curl -f -I -H 'x-amz-checksum-mode: ENABLED' "$1" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "etag" || tolower($1) ~ /^x-amz-checksum-/ { gsub(/"/, "", $2); print tolower($1) ": " $2 }'
}
# Multipart records (lib/ferry_mpu.h) and the part requests a faultproxy --log shows:
# mpu_key DATASET -> the key of the dataset's (first) record, or "";
# parts_recorded DATASET -> the record's finished part numbers, sorted;
# urlq STRING -> STRING URL-encoded as in a query (an upload id in a logged request line);
# part_requests LOG UPLOAD_ID PART -> UploadPart(Copy) requests of that part in LOG
# (faultproxy --kind latency --rate 1 logs every request).
mpu_key() { redis-cli -u "$FERRY_REDIS_URL" --raw --scan --pattern "ferry:{$1}:mpu:*" | head -1; }
parts_recorded() {
    local k; k=$(mpu_key "$1"); [[ -n "$k" ]] || return 0
    redis-cli -u "$FERRY_REDIS_URL" --raw HKEYS "$k" | sed -n 's/^p\([0-9]*\)$/\1/p' | sort -n
}
urlq() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
part_requests() { grep -c "^latency PUT [^ ]*?partNumber=$3&uploadId=$(urlq "$2") " "$1" || true; }
# bucket_pair NAME: creates a source and a target bucket for this run: $SRC_B, $DST_B
bucket_pair() {
    SRC_B=$(bucket "$1-src"); DST_B=$(bucket "$1-dst")
    "$S3TOOL" mb "$SRC_B" >/dev/null || fail "creating bucket $SRC_B"
    "$S3TOOL" mb "$DST_B" >/dev/null || fail "creating bucket $DST_B"
}

redis_cli() { redis-cli -u "$FERRY_REDIS_URL" --no-raw "$@" | tr -d '"'; }
state_field() { redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$1}:state" "$2"; }
status_is() { [[ "$(state_field "$1" status)" == "$2" ]]; }

# count_messages TOPIC -> number of messages currently in TOPIC
count_messages() {
    kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$1" -e -q -f '%k\n' 2>/dev/null | wc -l
}

EVENTTOOL=$BIN/tests/tools/ferry-eventtool

# produce_file TOPIC PARTITION KEY FILE : one message whose value is FILE's bytes.
produce_file() {
    kcat -P -b "$FERRY_KAFKA_BROKERS" -t "$1" -p "$2" -k "$3" "$4"
}

# group_settled_on W1 W2 : the two workers' latest rebalances are assignments that share
# every partition of the onboarding and chunk topics between them, each holding some.
last_assigned() { grep -o 'assigned [0-9]* partition' "$WORK/$1.log" | tail -1 | tr -dc 0-9; }
total_partitions() {
    local t n=0
    for t in "$FERRY_TOPIC_ONBOARD" "$FERRY_TOPIC_CHUNKS"; do
        n=$((n + $(kcat -b "$FERRY_KAFKA_BROKERS" -L -t "$t" | grep -c 'partition [0-9]*,')))
    done
    echo "$n"
}
group_settled_on() {
    local total a b
    total=$(total_partitions); a=$(last_assigned "$1"); b=$(last_assigned "$2")
    (( a + b == total && a < total ))
}

# produce_duplicate DATASET SOURCE TARGET : one onboarding event, produced byte-identical
# to partitions 0 and 3 (two workers get the same event at once).
produce_duplicate() {
    "$EVENTTOOL" onboard --dataset "$1" --source "$2" --target "$3" > "$WORK/ev.bin"
    produce_file "$FERRY_TOPIC_ONBOARD" 0 "$1" "$WORK/ev.bin"
    produce_file "$FERRY_TOPIC_ONBOARD" 3 "$1" "$WORK/ev.bin"
}

# group_lag TOPIC... -> the worker group's lag over every partition of the topics: high
# watermark minus committed offset (tests/tools/grouptool.c).
GROUPTOOL=$BIN/tests/tools/ferry-grouptool
group_lag() { "$GROUPTOOL" lag "$FERRY_WORKER_GROUP" "$@"; }
group_lag_is_zero() { [[ "$(group_lag "$@")" == 0 ]]; }

# wait_committed SECONDS [TOPIC...] : until the worker group committed past every event
# of the topics (default: onboard and chunks). Then none of them is delivered again, so
# whatever they cause (a DatasetMigrated, a DLQ record) has happened and will not happen
# twice: wait for this, not a sleep, before asserting "exactly one". Fails the test.
wait_committed() {
    local secs=$1; shift
    (( $# )) || set -- "$FERRY_TOPIC_ONBOARD" "$FERRY_TOPIC_CHUNKS"
    wait_until "$secs" group_lag_is_zero "$@" ||
        fail "group $FERRY_WORKER_GROUP did not commit past every event of $* within ${secs} s (lag: $(group_lag "$@" 2>&1))"
}

# dlq_classes : "offset class" per DLQ record (all partitions).
dlq_classes() {
    kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_DLQ" -e -q \
        -f '%p:%o %h\n' 2>/dev/null |
        sed -E 's/^([0-9]+:[0-9]+) .*ferry-error-class=([^,]*).*/\1 \2/'
}

# copied_count LOGFILE... : copy requests that completed (needs log.level=debug).
copied_count() { cat "$@" 2>/dev/null | grep -c '"msg":"copied ' || true; }

# seed_dataset BUCKET PREFIX COUNT [MAX_SIZE] : prints "objects bytes"
seed_dataset() {
    "$S3TOOL" mb "$1" >/dev/null
    "$S3TOOL" seed "s3://$1/$2" --count "$3" --min-size 0 --max-size "${4:-20000}" --seed 11
}

publish() { # DATASET SRC DST [extra...]
    local ds=$1 src=$2 dst=$3; shift 3
    "$PRODUCER" publish --dataset "$ds" --source "$src" --target "$dst" "$@" >/dev/null
}

# chunks_copied DATASET: the objects its chunks copied, summed from their counts
# (ferry:{DATASET}:chunk_counts) -- equal to the dataset's when no chunk overlaps another
# and none left a key out.
chunks_copied() {
    local n i c sum=0
    n=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$1}:chunks" n)
    for ((i = 0; i < ${n:-0}; i++)); do
        c=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$1}:chunk_counts" "$i")
        sum=$((sum + ${c%% *}))
    done
    echo "$sum"
}

assert_done_exact() { # DATASET OBJECTS BYTES SRC DST
    [[ "$(state_field "$1" status)" == done ]] || fail "$1: status $(state_field "$1" status)"
    [[ "$(state_field "$1" objects_done)" == "$2" ]] || fail "$1: objects_done $(state_field "$1" objects_done) != $2"
    [[ "$(state_field "$1" bytes_done)" == "$3" ]] || fail "$1: bytes_done $(state_field "$1" bytes_done) != $3"
    "$S3TOOL" compare "$4" "$5" >/dev/null || fail "$1: target differs from source"
}

# Topics exist before any worker subscribes (a consumer never creates its topic, and a
# subscription to a missing topic gets no partitions): a metadata request asks the broker
# to create them (auto.create.topics.enable, as in the local stack).
ensure_topic() {
    local t=$1 tries=0
    until kcat -b "$FERRY_KAFKA_BROKERS" -L -t "$t" 2>/dev/null | has "topic \"$t\" with [1-9]"; do
        (( tries++ < 50 )) || fail "topic $t was not created"
        sleep 0.2
    done
}
for _t in "$FERRY_TOPIC_ONBOARD" "$FERRY_TOPIC_DLQ" "$FERRY_TOPIC_MIGRATED" "$FERRY_TOPIC_CHUNKS"; do
    ensure_topic "$_t"
done
