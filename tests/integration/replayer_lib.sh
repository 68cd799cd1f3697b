# shellcheck shell=bash
# Helpers for the ferry-dlq-replayer tests (sourced after lib.sh). Not a test itself: the
# CMake glob registers test_*.sh only.
#
# Synthetic DLQ records are built exactly as worker/worker_dlq.c builds them: the real
# event's bytes (published with ferry-producer to the test's onboarding topic, then read
# back) as the value, the dataset as the key, and the worker's headers -- so the replayer
# reads them as it reads the worker's. test_replayer_replays_fixed_source_bucket.sh and
# test_replayer_loop_guard_refuses_max_count.sh use a real worker instead.

# rp ARGS... : the replayer; its stderr (logs) goes to $WORK/replayer.log.
rp() { "$REPLAYER" "$@" 2>>"$WORK/replayer.log"; }

# make_event DATASET [SRC] [DST] : publishes a real DatasetOnboard to the onboarding topic
# and prints "PARTITION OFFSET FILE", FILE holding the value's exact bytes.
make_event() {
    local ds=$1 src=${2:-s3://$(bucket rp-nosrc)/$1/} dst=${3:-s3://$(bucket rp-nodst)/$1/}
    local out p o file
    out=$("$PRODUCER" publish --json --dataset "$ds" --source "$src" --target "$dst" 2>>"$WORK/producer.log") \
        || fail "publishing $ds"
    p=$(sed -E 's/.*"partition":([0-9]+).*/\1/' <<<"$out")
    o=$(sed -E 's/.*"offset":([0-9]+).*/\1/' <<<"$out")
    file="$WORK/event-$ds-$p-$o.bin"
    kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_ONBOARD" -p "$p" -o "$o" -c 1 -e -q \
        -f '%s' >"$file" || fail "reading back $ds"
    [[ -s "$file" ]] || fail "empty event read back for $ds"
    echo "$p $o $file"
}

# dlq_put DLQ_PARTITION DATASET EVENT("p o file") CLASS FAILED_AT_MS REPLAY_COUNT [MESSAGE]
# : one DLQ record as the worker writes it.
dlq_put() {
    local dp=$1 ds=$2 ev=$3 cls=$4 at=$5 rc=$6 msg=${7:-"$4: synthetic failure of $2"}
    local p o file
    read -r p o file <<<"$ev"
    kcat -P -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_DLQ" -p "$dp" -k "$ds" \
        -H "ferry-error-class=$cls" -H "ferry-error-message=$msg" \
        -H "ferry-original-topic=$FERRY_TOPIC_ONBOARD" -H "ferry-original-partition=$p" \
        -H "kafka_dlt-original-partition=$p" -H "ferry-original-offset=$o" \
        -H "kafka_dlt-original-offset=$o" -H "ferry-attempts=1" -H "ferry-failed-at=$at" \
        -H "ferry-worker=test-worker" -H "ferry-replay-count=$rc" \
        -H "kafka_dlt-original-topic=$FERRY_TOPIC_ONBOARD" \
        -H "kafka_dlt-exception-message=$msg" "$file" || fail "writing a DLQ record"
}

now_ms() { date +%s%3N; }
iso_ms() { date -u -d "$1" +%s%3N; }

# end_offsets TOPIC : "[p]=high ..." for every partition (kcat -Q with OFFSET_END).
end_offsets() {
    local t=$1 n p args=()
    n=$(kcat -b "$FERRY_KAFKA_BROKERS" -L -t "$t" 2>/dev/null | grep -c '^    partition ' || true)
    (( n > 0 )) || { echo "none"; return; }
    for ((p = 0; p < n; p++)); do args+=(-t "$t:$p:-1"); done
    kcat -b "$FERRY_KAFKA_BROKERS" -Q "${args[@]}" | awk '{printf "%s=%s ", $2, $4}'
}

# replayed_from TOPIC : the ferry-replayed-from header of every record on TOPIC, one a line.
replayed_from() {
    kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$1" -e -q -f '%h\n' 2>/dev/null |
        grep -o 'ferry-replayed-from=[^,]*' | cut -d= -f2 || true
}

# dlq_positions : "p:o" of every DLQ record, sorted, one a line.
dlq_positions() {
    kcat -C -b "$FERRY_KAFKA_BROKERS" -t "$FERRY_TOPIC_DLQ" -e -q -f '%p:%o\n' 2>/dev/null | sort
}

# dlq_count : records in the DLQ topic
dlq_count() { dlq_positions | grep -c . || true; }

# selected ARGS... : "p:o p:o ..." that `list --json ARGS` shows, sorted.
selected() {
    rp list --json "$@" | { grep -o '^ *{"partition":[0-9]*,"offset":[0-9]*' || true; } |
        sed -E 's/.*"partition":([0-9]+),"offset":([0-9]+)/\1:\2/' | sort | tr '\n' ' ' | sed 's/ $//'
}

# ledger GET of one DLQ position "p:o"
ledger_get() {
    redis-cli -u "$FERRY_REDIS_URL" --raw GET "ferry:replay:{$FERRY_TOPIC_DLQ}:$1"
}
ledger_count() {
    redis-cli -u "$FERRY_REDIS_URL" --scan --pattern "ferry:replay:{$FERRY_TOPIC_DLQ}:*" | grep -vc ':lock$' || true
}

# exactly_once : every DLQ record appears exactly once on the onboarding topic (by its
# ferry-replayed-from header), and nothing else was replayed from this DLQ.
exactly_once() {
    local want got dup
    want=$(dlq_positions | sed "s|^\([0-9]*\):\([0-9]*\)$|$FERRY_TOPIC_DLQ/\1/\2|" | sort)
    got=$(replayed_from "$FERRY_TOPIC_ONBOARD" | grep -F "$FERRY_TOPIC_DLQ/" | sort || true)
    dup=$(uniq -d <<<"$got")
    [[ -z "$dup" ]] || { echo "replayed more than once: $dup" >&2; return 1; }
    [[ "$got" == "$want" ]] || { echo "replayed: [$got] expected: [$want]" >&2; return 1; }
}
