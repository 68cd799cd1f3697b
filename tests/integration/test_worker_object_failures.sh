#!/usr/bin/env bash
# Per-object failures (issue 11, DESIGN.md §9 "Failure scope", "Failure report").
#
# 1. Through tests/tools/faultproxy.py in front of the real S3 server, the server-side copy
#    of one key answers 403 AccessDenied, one 403 InvalidObjectState (an archived
#    object, as S3 answers for GLACIER), one 403 AccessDenied whose message says the KMS
#    key may not be used (what AWS S3 answers when kms:Decrypt is denied), one 400
#    KMS.DisabledException, one 400 KeyTooLongError for its target key (a key the target
#    refuses) and one 404 NoSuchKey (deleted after listing). Every other object is still
#    copied and verified; the dataset ends failed_objects with exact counts (5 failed,
#    1 vanished), the report in Redis names each key with its class (s3-auth, s3-archived,
#    s3-kms twice, s3-invalid-key, vanished), the DLQ record has class failed-objects and
#    the header ferry-report, and `status` (text and --json) and /metrics show it. With
#    report.bucket set, the report is also a JSON-lines object there, named in the DLQ
#    header too.
# 2. ferry-dlq-replayer replays it (the faults gone): the worker checks every object at
#    the target and copies only the 6 missing ones -- proved with the proxy's request
#    counts -- and the dataset ends done, identical to the source.
# 3. Every key 403 with copy.max_failed_objects=5: a fast permanent failure, dead-lettered
#    with the dataset-scope class s3-auth after a handful of copy requests, not N.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replayer_lib.sh"

FAULTPROXY=$SRC/tests/tools/faultproxy.py
N=60
SRC_B=$(bucket of-src); DST_B=$(bucket of-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ "$N" 3000)
"$S3TOOL" mb "$DST_B" >/dev/null
REP_B=$(bucket of-rep); "$S3TOOL" mb "$REP_B" >/dev/null
DENIED=data/dir07/obj-000041.bin     # 41 % 17 = 7 (s3tool seed's key layout)
VANISHED=data/dir09/obj-000043.bin
ARCHIVED=data/dir11/obj-000045.bin
KMSDENIED=data/dir13/obj-000047.bin
KMSOFF=data/dir15/obj-000049.bin
BADKEY=data/dir00/obj-000051.bin     # refused at the target: copy/dir00/obj-000051.bin
MISSING=6 FAILED=5
DS="of-$(tr -cd 0-9 <<<"$RUN_ID" | tail -c 10)"

http_port() { sed -n 's/.*http: listening on [^ ]* (port \([0-9]*\)).*/\1/p' "$1" | head -1; }
metric() { curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2; f=1} END {if (!f) print 0}'; }
op_count() { # NAME OP -> requests of that S3 operation seen by proxy NAME
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["by_op"].get(sys.argv[2], 0))' "$WORK/counts-$1.json" "$2" 2>/dev/null || echo 0
}
# start_proxy NAME [--rule R]... : sets PROXY_PORT, PROXY_PID
start_proxy() {
    local name=$1; shift
    python3 "$FAULTPROXY" --upstream "$FERRY_S3_ENDPOINT" --kind none "$@" \
        --log "$WORK/faults-$name.log" --counts "$WORK/counts-$name.json" --port-file "$WORK/port-$name" \
        >"$WORK/proxy-$name.out" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    wait_until 60 test -s "$WORK/port-$name" || fail "faultproxy $name did not start: $(cat "$WORK/proxy-$name.out")"
    PROXY_PORT=$(cat "$WORK/port-$name")
}
stop_pid() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
dlq_headers_of() { kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_DLQ" -e -q -f '%k %h\n' 2>/dev/null | grep "^$1 " || true; }

# ---- 1. one key denied, one vanished ----------------------------------------------------
start_proxy faults --rule "^PUT .* /$SRC_B/$DENIED\$=forbidden" --rule "^PUT .* /$SRC_B/$VANISHED\$=nosuchkey" \
    --rule "^PUT .* /$SRC_B/$ARCHIVED\$=archived" --rule "^PUT .* /$SRC_B/$KMSDENIED\$=kmsdenied" \
    --rule "^PUT .* /$SRC_B/$KMSOFF\$=kms" --rule "^PUT /$DST_B/copy/${BADKEY#data/} =badkey"
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker w1 --http 127.0.0.1:0 -X s3.endpoint="http://127.0.0.1:$PROXY_PORT" -X copy.page_size=10 \
    -X report.bucket="$REP_B" \
    -X copy.max_in_flight=4 -X retry.base_ms=50 -X retry.max_ms=200
W1=$LAST_PID
wait_until 60 status_is "$DS" failed_objects \
    || { tail -30 "$WORK/w1.log" >&2; fail "dataset did not end failed_objects (status $(state_field "$DS" status))"; }
wait_until 30 bash -c "kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k %h\n' | grep -q '^$DS .*ferry-error-class=failed-objects'" \
    || { tail -20 "$WORK/w1.log" >&2; fail "no DLQ record with class failed-objects: $(dlq_headers_of "$DS")"; }
EVENT_ID=$(state_field "$DS" event_id)
for f in "objects_copied $((OBJS - MISSING))" "objects_identical 0" "objects_failed $FAILED" "objects_vanished 1" \
         "objects_done $((OBJS - MISSING))" "objects_total $OBJS"; do
    set -- $f
    [[ "$(state_field "$DS" "$1")" == "$2" ]] || fail "state $1 is $(state_field "$DS" "$1"), expected $2"
done
REPORT="ferry:{$DS}:report:$EVENT_ID"
[[ "$(state_field "$DS" report)" == "$REPORT" ]] || fail "state names report '$(state_field "$DS" report)', expected $REPORT"
[[ "$(redis-cli -u "$FERRY_REDIS_URL" HLEN "$REPORT")" == $MISSING ]] || fail "report has $(redis-cli -u "$FERRY_REDIS_URL" HLEN "$REPORT") entries"
# report_line KEY REGEX: the report's line for KEY matches REGEX
report_line() {
    redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$REPORT" "$1" | has "$2" \
        || fail "report line for $1: $(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$REPORT" "$1")"
}
report_line "$DENIED" '"outcome":"failed","class":"s3-auth","message":".*AccessDenied'
report_line "$ARCHIVED" '"outcome":"failed","class":"s3-archived","message":".*InvalidObjectState'
report_line "$VANISHED" '"outcome":"vanished","class":"vanished"'
report_line "$KMSDENIED" '"outcome":"failed","class":"s3-kms","message":".*AccessDenied: The ciphertext refers to a customer master key'
report_line "$KMSOFF" '"outcome":"failed","class":"s3-kms","message":".*KMS.DisabledException'
report_line "$BADKEY" '"outcome":"failed","class":"s3-invalid-key","message":".*KeyTooLongError'
REPORT_OBJ="s3://$REP_B/ferry-reports/$DS/$EVENT_ID.jsonl"
dlq_headers_of "$DS" | has -F "ferry-report=redis:$REPORT $REPORT_OBJ" || fail "DLQ record does not name the report: $(dlq_headers_of "$DS")"
[[ "$(state_field "$DS" report_object)" == "$REPORT_OBJ" ]] || fail "state report_object '$(state_field "$DS" report_object)'"
read -r robjs rbytes < <("$S3TOOL" count "s3://$REP_B/ferry-reports/$DS/")
(( robjs == 1 && rbytes > 100 )) || fail "report object: $robjs objects, $rbytes bytes"
[[ $(dlq_headers_of "$DS" | wc -l) -eq 1 ]] || fail "expected one DLQ record for $DS: $(dlq_headers_of "$DS")"
# every other object is at the target, byte-identical (compared against S3 directly)
"$S3TOOL" compare "s3://$SRC_B/data/" "s3://$DST_B/copy/" >"$WORK/cmp1.txt" 2>&1 || true
grep -q "compared $OBJS objects .*: $MISSING missing, 0 different" "$WORK/cmp1.txt" || fail "target: $(cat "$WORK/cmp1.txt")"
# status (text and JSON) and /metrics
"$WORKER" status >"$WORK/status.txt" || fail "status exited $?"
grep -q "^$DS .*failed_objects" "$WORK/status.txt" || fail "status text: $(cat "$WORK/status.txt")"
grep -q "$((OBJS - MISSING)) copied, 0 identical, 1 vanished, $FAILED failed; report: $REPORT" "$WORK/status.txt" \
    || fail "status text lacks the counts: $(cat "$WORK/status.txt")"
"$WORKER" status --json | python3 -c '
import json, sys
ds, n = sys.argv[1], int(sys.argv[2])
row = [r for r in json.load(sys.stdin) if r["dataset"] == ds][0]
failed = int(sys.argv[3])
want = {"status": "failed_objects", "objects_copied": n - failed - 1, "objects_failed": failed,
        "objects_vanished": 1, "objects_identical": 0, "error_class": "failed-objects",
        "verify": "etag-md5"}  # single-part copies of unencrypted objects: MD5 ETags
bad = {k: row.get(k) for k in want if row.get(k) != want[k]}
sys.exit("status --json: %r" % bad if bad else 0)' "$DS" "$OBJS" "$FAILED" || fail "status --json"
W1_PORT=$(http_port "$WORK/w1.log")
[[ "$(metric "$W1_PORT" ferry_objects_failed_total)" == $FAILED ]] || fail "ferry_objects_failed_total $(metric "$W1_PORT" ferry_objects_failed_total)"
[[ "$(metric "$W1_PORT" ferry_objects_vanished_total)" == 1 ]] || fail "ferry_objects_vanished_total $(metric "$W1_PORT" ferry_objects_vanished_total)"
stop_pid "$W1"; stop_pid "$PROXY_PID"
note "1: $((OBJS - MISSING)) copied, $FAILED failed (403 denied, archived, KMS denied, KMS disabled, key too long), 1 vanished (404); report and DLQ header ok"

# ---- 2. replay: only the missing objects are copied ------------------------------------
start_proxy replay
start_worker w2 -X s3.endpoint="http://127.0.0.1:$PROXY_PORT" -X copy.page_size=10 -X copy.max_in_flight=4
W2=$LAST_PID
rp replay --dataset "$DS" >"$WORK/replay.txt" || { cat "$WORK/replay.txt" "$WORK/replayer.log" >&2; fail "replay exited non-zero"; }
grep -q ": 1 replayed$" "$WORK/replay.txt" || fail "expected one replayed record: $(cat "$WORK/replay.txt")"
wait_until 60 status_is "$DS" done || { tail -30 "$WORK/w2.log" >&2; fail "replayed dataset not done (status $(state_field "$DS" status))"; }
assert_done_exact "$DS" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
copies=$(op_count replay copy); heads=$(op_count replay head)
(( copies == MISSING )) || fail "the replay made $copies copy requests; only the $MISSING missing objects should be copied"
(( heads >= OBJS )) || fail "the replay made $heads HEAD requests; every object must be checked ($OBJS)"
[[ "$(state_field "$DS" objects_identical)" == $((OBJS - MISSING)) ]] || fail "objects_identical $(state_field "$DS" objects_identical)"
[[ "$(state_field "$DS" objects_copied)" == $MISSING ]] || fail "objects_copied $(state_field "$DS" objects_copied)"
[[ "$(redis-cli -u "$FERRY_REDIS_URL" EXISTS "$REPORT")" == 0 ]] || fail "the old report outlived the replay"
stop_pid "$W2"; stop_pid "$PROXY_PID"
REPLAY_LINE="replay|$(op_count replay list)|$heads|$copies"
note "2: replay copied $copies objects ($heads HEADs) and ended done"

# ---- 3. every key 403: the threshold fails the dataset fast -----------------------------
DS3="$DS-all"
start_proxy all --rule "^PUT .* /$SRC_B/=forbidden"
publish "$DS3" "s3://$SRC_B/data/" "s3://$DST_B/all/"
start_worker w3 -X s3.endpoint="http://127.0.0.1:$PROXY_PORT" -X copy.page_size=10 \
    -X copy.max_in_flight=2 -X copy.max_failed_objects=5
W3=$LAST_PID
wait_until 60 bash -c "kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k %h\n' | grep -q '^$DS3 .*ferry-error-class=s3-auth'" \
    || { tail -20 "$WORK/w3.log" >&2; fail "every-key-403 was not dead-lettered as s3-auth: $(dlq_headers_of "$DS3")"; }
[[ "$(state_field "$DS3" status)" == failed ]] || fail "$DS3: status $(state_field "$DS3" status)"
state_field "$DS3" last_error | has "more than copy.max_failed_objects=5" || fail "last_error: $(state_field "$DS3" last_error)"
copies=$(op_count all copy)
(( copies <= 10 )) || fail "$copies copy requests before giving up (threshold 5, 2 in flight)"
stop_pid "$W3"; stop_pid "$PROXY_PID"

if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
{ echo "scenario|LIST|HEAD|COPY"; echo "$REPLAY_LINE"; echo "every key 403|$(op_count all list)|$(op_count all head)|$copies"; } | column -t -s '|' >&2
note "ok: per-object failures recorded, replay copied only what was missing, threshold fails fast"
