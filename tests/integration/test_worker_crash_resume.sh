#!/usr/bin/env bash
# Scenario 1: kill -9 a worker at random moments of a 2,000-object migration, 20 times,
# restarting it each time. At the end every object is at the target with identical
# bytes, the state is done with exact counts, and objects are not copied again after the
# checkpoint beyond what was in flight (re-copies are counted and reported).
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket crash-src); DST_B=$(bucket crash-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 2000 4000)
"$S3TOOL" mb "$DST_B"
DS=crash-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"

# Static membership: a restarted worker takes its partitions back at once instead of
# waiting for the killed one's session to time out. Kills land at random points of the
# migration: at 20 random progress thresholds, plus a random delay of up to 0.3 s so they
# fall mid-page, mid-checkpoint and mid-startup alike.
ARGS=(-X group.instance.id=crashy -X log.level=debug -X copy.max_in_flight=8
      -X copy.page_size=100 -X copy.checkpoint_interval_ms=200 -X lease.ttl_ms=5000
      -X copy.max_requests_per_second=400)
mapfile -t thresholds < <(for _ in $(seq 1 20); do echo $((RANDOM % (N - 50))); done | sort -n)
kills=0; progress=()
at_least() { (( $(state_field "$DS" objects_done || echo 0) >= $1 )) || status_is "$DS" done; }
for round in $(seq 1 20); do
    start_worker "crashy-$round" "${ARGS[@]}" -X worker.id=crashy; pid=$LAST_PID
    wait_until 60 at_least "${thresholds[$((round - 1))]}" || true
    sleep "0.$((RANDOM % 300))"
    kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null || true
    progress+=("$(state_field "$DS" objects_done)")
done
note "objects_done after each kill: ${progress[*]}"
start_worker crashy-final "${ARGS[@]}" -X worker.id=crashy
wait_until 180 status_is "$DS" done || { tail -20 "$WORK/crashy-final.log" >&2; fail "migration did not finish"; }
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"

# Work done per key, from the debug log lines (each flushed as it is written, so a
# kill -9 loses at most the lines of copies that completed in its last instant).
cat "$WORK"/crashy*.log | sed -n 's/.*"msg":"copied \(.*\) -> .*/\1/p' | sort > "$WORK/copied.txt"
cat "$WORK"/crashy*.log | sed -n 's/.*"msg":"identical at the target, not copying \(.*\)"}$/\1/p' | sort -u > "$WORK/skipped.txt"
copies=$(wc -l < "$WORK/copied.txt")
distinct=$(sort -u "$WORK/copied.txt" | wc -l)
recopies=$((copies - distinct))
skipped=$(wc -l < "$WORK/skipped.txt")
accounted=$(sort -u "$WORK/copied.txt" "$WORK/skipped.txt" | wc -l)
note "kills: $kills; copies: $copies of $distinct distinct objects; re-copies: $recopies; found identical after a resume and not copied: $skipped"
echo "RESULT crash_resume kills=$kills objects=$N copies=$copies recopies=$recopies skipped_on_resume=$skipped"
# Every object was either copied or found identical at the target.
(( accounted >= N - kills )) || fail "only $accounted of $N objects accounted for in the logs"
# A kill can only waste the copies in flight (8) at that instant.
(( recopies <= kills * 8 )) || fail "too many re-copies: $recopies for $kills kills"
