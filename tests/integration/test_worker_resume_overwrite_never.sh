#!/usr/bin/env bash
# Issue 13.3: with overwrite=never, a migration resumed after a crash must recognise the
# objects ferry itself copied before the crash, also where ETags cannot tell -- a
# multipart copy's ETag ("...-N") never equals the source's MD5. It used to fail
# permanently ("target object ... exists and differs") on such an object.
#
# The crash is reproduced as the state it leaves: the migration ran (every object at the
# target), then its state hash is set back to "running" without checkpoint or counts, as
# if the worker died right after copying, before any checkpoint; the same event is
# delivered again.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket rn-src); DST_B=$(bucket rn-dst)
"$S3TOOL" mb "$SRC_B" >/dev/null
read -r n1 b1 < <("$S3TOOL" seed "s3://$SRC_B/data/big/" --count 2 --min-size 6291456 --max-size 7340032 --seed 5)
read -r n2 b2 < <("$S3TOOL" seed "s3://$SRC_B/data/small/" --count 4 --min-size 0 --max-size 2000 --seed 6)
"$S3TOOL" mb "$DST_B" >/dev/null
DS=rn-$RANDOM$RANDOM
EV=$(python3 -c 'import uuid; print(uuid.uuid4())')
MP=(-X copy.multipart_threshold_mb=5 -X copy.multipart_part_size_mb=5)

publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/" --overwrite never --event-id "$EV"
start_worker r1 "${MP[@]}"
wait_until 90 status_is "$DS" done || { tail -20 "$WORK/r1.log" >&2; fail "first run not done"; }
kill -TERM "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true

# The state a crash leaves behind (lease expired): running, nothing checkpointed.
redis-cli -u "$FERRY_REDIS_URL" HSET "ferry:{$DS}:state" status running objects_done 0 bytes_done 0 \
    objects_copied 0 objects_identical 0 >/dev/null
redis-cli -u "$FERRY_REDIS_URL" HDEL "ferry:{$DS}:state" checkpoint finished_at >/dev/null
redis-cli -u "$FERRY_REDIS_URL" DEL "ferry:{$DS}:lease" >/dev/null
DLQ_BASE=$(count_messages "$FERRY_TOPIC_DLQ")

publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/" --overwrite never --event-id "$EV"
start_worker r2 "${MP[@]}"
wait_until 90 bash -c "[[ \$(redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$DS}:state' status) == done || \
    \$(kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k\n' 2>/dev/null | grep -c .) -gt $DLQ_BASE ]]" \
    || { tail -20 "$WORK/r2.log" >&2; fail "resumed run neither finished nor failed"; }
[[ $(count_messages "$FERRY_TOPIC_DLQ") -eq $DLQ_BASE ]] \
    || fail "the resumed run was dead-lettered: $(state_field "$DS" error_class): $(state_field "$DS" last_error)"
assert_done_exact "$DS" $((n1 + n2)) $((b1 + b2)) "s3://$SRC_B/data/" "s3://$DST_B/copy/"
[[ "$(state_field "$DS" objects_identical)" == $((n1 + n2)) ]] \
    || fail "objects_identical $(state_field "$DS" objects_identical), expected $((n1 + n2)) (nothing recopied)"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "ok: resumed with overwrite=never; $n1 multipart copies recognised as ferry's own"
