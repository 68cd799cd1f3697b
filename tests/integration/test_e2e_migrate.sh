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

# Offset committed: the group's committed offset is past the event once the worker stored
# it (wait for that, with a deadline), and a clean stop keeps it. Then a second worker
# must not see the event: a sentinel event on the same partition, after it, is the first
# thing the second worker processes.
wait_committed 60
kill -TERM "$LAST_PID"; wait "$LAST_PID" || fail "worker exited non-zero on SIGTERM"
group_lag_is_zero "$FERRY_TOPIC_ONBOARD" "$FERRY_TOPIC_CHUNKS" || fail "lag $(group_lag "$FERRY_TOPIC_ONBOARD" "$FERRY_TOPIC_CHUNKS") after a clean stop: offset not committed"
part=$(kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_ONBOARD" -e -q -f '%k %p\n' | awk -v k="$DS" '$1 == k {print $2; exit}')
[[ -n "$part" ]] || fail "cannot find the partition of $DS's event"
DS2="$DS-sentinel"
"$EVENTTOOL" onboard --dataset "$DS2" --source "s3://$SRC_B/data/" --target "s3://$DST_B/sentinel/" > "$WORK/sentinel.bin"
produce_file "$FERRY_TOPIC_ONBOARD" "$part" "$DS2" "$WORK/sentinel.bin"
start_worker w2
wait_until 180 status_is "$DS2" done || fail "the sentinel event on partition $part was not migrated by the second worker"
grep "\"$DS\"" "$WORK/w2.log" | has "already migrated\|migrating" && fail "event was redelivered: offset not committed"
wait_committed 60
[[ $(kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_MIGRATED" -e -q -f '%k\n' | grep -cx "$DS") -eq 1 ]] || fail "a second DatasetMigrated for $DS appeared"
note "ok: $n_objects objects / $n_bytes bytes migrated and verified"
