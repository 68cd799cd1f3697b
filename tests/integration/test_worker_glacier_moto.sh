#!/usr/bin/env bash
# A GLACIER object on moto (the stack's second S3 server, whose archived objects refuse
# CopyObject with 403 ObjectNotInActiveTierError, as AWS does): the other objects of the
# dataset are copied and verified, the archived one is reported with class s3-archived,
# and the dataset ends failed_objects with exact counts (issue 11, the scenario that sank
# a whole dataset before). Runs against moto only: S3Proxy keeps no storage class.
export FERRY_TEST_S3=moto
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket gl-src); DST_B=$(bucket gl-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ok/ 12 2000)
"$S3TOOL" mb "$DST_B" >/dev/null
FROZEN=data/zz-frozen.bin
# moto checks no signature (see test_objstore), so a plain PUT sets the storage class.
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'x-amz-storage-class: GLACIER' \
    --data-binary 'archived bytes' "$FERRY_S3_ENDPOINT/$SRC_B/$FROZEN")
[[ $code == 200 ]] || fail "PUT of the GLACIER object answered $code"
DS=gl-$RANDOM$RANDOM

publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker g1 -X copy.page_size=5
wait_until 60 status_is "$DS" failed_objects \
    || { tail -20 "$WORK/g1.log" >&2; fail "not failed_objects (status $(state_field "$DS" status))"; }
for f in "objects_copied $OBJS" "objects_failed 1" "objects_vanished 0" "objects_total $((OBJS + 1))"; do
    set -- $f
    [[ "$(state_field "$DS" "$1")" == "$2" ]] || fail "state $1 is $(state_field "$DS" "$1"), expected $2"
done
line=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS}:report:$(state_field "$DS" event_id)" "$FROZEN")
grep -q '"class":"s3-archived","message":".*ObjectNotInActiveTierError' <<<"$line" || fail "report line: $line"
# (the archived source cannot be read back, so compare the rest and count the target)
"$S3TOOL" compare "s3://$SRC_B/data/ok/" "s3://$DST_B/copy/ok/" >/dev/null || fail "target differs from source"
read -r tobjs tbytes < <("$S3TOOL" count "s3://$DST_B/copy/")
(( tobjs == OBJS && tbytes == BYTES )) || fail "target holds $tobjs objects / $tbytes bytes, expected $OBJS / $BYTES"
wait_until 30 bash -c "kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k %h\n' | grep -q '^$DS .*ferry-error-class=failed-objects'" \
    || fail "no DLQ record with class failed-objects"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "ok: $OBJS objects copied on moto, the GLACIER one reported (s3-archived), dataset failed_objects"
