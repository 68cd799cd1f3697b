#!/usr/bin/env bash
# Walking skeleton, end to end on the real stack: publish -> worker -> every source
# object at the target with identical bytes (read back with GET), Redis state done with
# exact counts, one DatasetMigrated event, and the offset committed (a restarted worker
# does not redo the migration).
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket e2e-src); DST_B=$(bucket e2e-dst)
DS="e2e-$RANDOM"
"$S3TOOL" mb "$SRC_B"
"$S3TOOL" mb "$DST_B"
"$S3TOOL" seed "s3://$SRC_B/data/" --count 300 --min-size 0 --max-size 300000 --seed 7 \
    > "$WORK/seed.txt"
read -r n_objects n_bytes < <(awk '{print $1, $2}' "$WORK/seed.txt")
note "seeded $n_objects objects, $n_bytes bytes"

"$PRODUCER" publish --dataset "$DS" --source "s3://$SRC_B/data/" --target "s3://$DST_B/copy/" \
    > "$WORK/publish.out"
grep -q "published event" "$WORK/publish.out" || fail "publish printed: $(cat "$WORK/publish.out")"

start_worker w1
wait_until 180 status_is "$DS" done || { cat "$WORK/w1.log" >&2; fail "migration did not finish"; }

[[ "$(state_field "$DS" objects_done)" == "$n_objects" ]] || fail "objects_done $(state_field "$DS" objects_done) != $n_objects"
[[ "$(state_field "$DS" bytes_done)" == "$n_bytes" ]] || fail "bytes_done $(state_field "$DS" bytes_done) != $n_bytes"
"$S3TOOL" compare "s3://$SRC_B/data/" "s3://$DST_B/copy/" || fail "target differs from source"

wait_until 30 bash -c "[[ \$(kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_MIGRATED' -e -q -f '%k\n' | grep -cx '$DS') -eq 1 ]]" \
    || fail "expected exactly one DatasetMigrated for $DS"

# Offset committed: stop the worker cleanly, start another; it must not see the event.
kill -TERM "$LAST_PID"; wait "$LAST_PID" || fail "worker exited non-zero on SIGTERM"
start_worker w2
wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/w2.log" || fail "second worker never got partitions"
sleep 3
grep -q "already migrated\|migrating" "$WORK/w2.log" && fail "event was redelivered: offset not committed"
[[ $(count_messages "$FERRY_TOPIC_MIGRATED") -eq 1 ]] || fail "a second DatasetMigrated appeared"
note "ok: $n_objects objects / $n_bytes bytes migrated and verified"
