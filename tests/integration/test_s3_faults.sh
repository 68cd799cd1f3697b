#!/usr/bin/env bash
# S3 fault injection (issue 8, reliability R14/R15): the worker talks to S3Proxy through
# tests/tools/faultproxy.py, which injects one kind of fault into a fraction of the
# requests. For each retryable kind the migration must finish with exact counts, the
# target byte-identical to the source (compared directly against S3Proxy, not through
# the proxy), retries counted in /metrics and nothing dead-lettered. With the permanent
# 403 mode the dataset is dead-lettered with class s3-auth, after few requests.
source "$(dirname "$0")/lib.sh"

FAULTPROXY=$SRC/tests/tools/faultproxy.py
U=$(tr -cd 0-9 <<<"$RUN_ID" | tail -c 12)  # unique dataset names: Redis state outlives a test
N=${FERRY_FAULT_OBJECTS:-120}
RATE=${FERRY_FAULT_RATE:-0.05}
SRC_B=$(bucket flt-src); DST_B=$(bucket flt-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ "$N" 4000)
"$S3TOOL" mb "$DST_B" >/dev/null
DLQ_BASE=$(count_messages "$FERRY_TOPIC_DLQ")

http_port() { sed -n 's/.*http: listening on [^ ]* (port \([0-9]*\)).*/\1/p' "$1" | head -1; }
metric() { # PORT NAME -> value of an unlabelled metric (0 if absent)
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2; f=1} END {if (!f) print 0}'
}

# start_proxy KIND RATE : starts the proxy, sets PROXY_PORT and PROXY_PID
start_proxy() {
    python3 "$FAULTPROXY" --upstream "$FERRY_S3_ENDPOINT" --kind "$1" --rate "$2" --seed 7 \
        --latency-ms 150 --log "$WORK/faults-$1.log" --counts "$WORK/counts-$1.json" --port-file "$WORK/port-$1" \
        >"$WORK/proxy-$1.out" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    wait_until 60 test -s "$WORK/port-$1" || fail "faultproxy did not start: $(cat "$WORK/proxy-$1.out")"
    PROXY_PORT=$(cat "$WORK/port-$1")
}
injected() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["injected"])' "$WORK/counts-$1.json" 2>/dev/null || echo 0; }
requests() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$WORK/counts-$1.json" 2>/dev/null || echo 0; }

# run_kind KIND RATE : one migration through the proxy; sets W_PORT, W_PID
run_kind() {
    local kind=$1 rate=$2
    export FERRY_TOPIC_ONBOARD="$TOPIC_PREFIX.$kind.onboard" FERRY_WORKER_GROUP="ferry-test-$RUN_ID-$kind"
    ensure_topic "$FERRY_TOPIC_ONBOARD"
    start_proxy "$kind" "$rate"
    publish "flt-$kind-$U" "s3://$SRC_B/data/" "s3://$DST_B/$kind/"
    start_worker "w-$kind" --http 127.0.0.1:0 -X s3.endpoint="http://127.0.0.1:$PROXY_PORT" \
        -X retry.base_ms=5 -X retry.max_ms=50 -X retry.max_attempts=1000 \
        -X s3.timeout_ms=5000 -X copy.page_size=20 -X copy.max_in_flight=4
    W_PID=$LAST_PID
    wait_until 30 grep -q 'http: listening on' "$WORK/w-$kind.log" || { cat "$WORK/w-$kind.log" >&2; fail "$kind: no http listener"; }
    W_PORT=$(http_port "$WORK/w-$kind.log")
}
stop_worker() { local rc=0; kill -TERM "$W_PID" 2>/dev/null || true; wait "$W_PID" 2>/dev/null || rc=$?;
                (( rc == 0 )) || fail "worker exited $rc after SIGTERM (see $WORK/*.log)"
                kill -TERM "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }

TABLE=("fault|rate|requests|injected|retries|result")
for kind in ${FERRY_FAULT_KINDS:-slowdown reset latency truncate badlen}; do
    rate=$RATE
    run_kind "$kind" "$rate"
    # (status is "failed" between attempts: wait for done, the DLQ check below catches a give-up)
    wait_until 80 status_is "flt-$kind-$U" "done" \
        || { tail -20 "$WORK/w-$kind.log" >&2; fail "$kind: migration did not finish (status $(state_field "flt-$kind-$U" status))"; }
    retries=$(metric "$W_PORT" ferry_retries_total)
    inj=$(injected "$kind"); req=$(requests "$kind")
    stop_worker
    assert_done_exact "flt-$kind-$U" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/$kind/"
    (( inj > 0 )) || fail "$kind: the proxy injected nothing ($req requests)"
    if [[ $kind == latency ]]; then
        # Latency alone (150 ms, below s3.timeout_ms) is not a failure: no retry needed.
        :
    else
        (( ${retries%.*} > 0 )) || fail "$kind: $inj faults injected but ferry_retries_total is $retries"
    fi
    TABLE+=("$kind|$rate|$req|$inj|$retries|done, $OBJS objects identical")
done
[[ $(count_messages "$FERRY_TOPIC_DLQ") -eq $DLQ_BASE ]] || fail "retryable faults dead-lettered something: $(dlq_classes)"

# Permanent: every request answered 403 AccessDenied -> DLQ with class s3-auth.
kind=forbidden
run_kind "$kind" 1.0
wait_until 60 bash -c "kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k %h\n' | grep -q '^flt-forbidden-$U .*ferry-error-class=s3-auth'" \
    || { tail -20 "$WORK/w-$kind.log" >&2; fail "403 was not dead-lettered as s3-auth"; }
retries=$(metric "$W_PORT" ferry_retries_total)
inj=$(injected "$kind"); req=$(requests "$kind")
stop_worker
[[ "$(state_field flt-forbidden-$U status)" == failed ]] || fail "forbidden: status $(state_field flt-forbidden-$U status)"
(( ${retries%.*} == 0 )) || fail "forbidden: a permanent fault was retried ($retries)"
(( req <= 20 )) || fail "forbidden: $req requests for a permanent fault (hot retry loop?)"
TABLE+=("forbidden (403)|1.0|$req|$inj|$retries|dead-lettered, class s3-auth")

# ASan/UBSan builds: any sanitizer report in any process's log fails the test.
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
printf '%s\n' "${TABLE[@]}" | column -t -s '|' >&2
note "ok: every retryable S3 fault ended in an exact, byte-identical migration; 403 -> DLQ s3-auth"
