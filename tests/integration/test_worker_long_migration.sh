#!/usr/bin/env bash
# Scenario 3: a migration lasting far longer than max.poll.interval.ms completes without
# the worker leaving the group: migrations run off the poll thread, which keeps polling.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket long-src); DST_B=$(bucket long-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 300 2000)
"$S3TOOL" mb "$DST_B"
DS=long-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
t0=$SECONDS
# 300 objects at 30 requests/s: about 10 s, against a 3 s poll interval.
start_worker l1 -X session.timeout.ms=3000 -X heartbeat.interval.ms=300 \
    -X max.poll.interval.ms=3000 -X copy.max_requests_per_second=30 >/dev/null
wait_until 120 status_is "$DS" done || fail "not done"
took=$((SECONDS - t0))
(( took > 6 )) || fail "migration took only ${took}s: not longer than max.poll.interval.ms, test proves nothing"
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
grep -qi 'max.poll\|MAXPOLL\|revoked' "$WORK/l1.log" && fail "worker left the group: $(grep -i 'max.poll\|revoked' "$WORK/l1.log" | head -3)"
[[ $(grep -c 'assigned [0-9]* partition' "$WORK/l1.log") -eq 1 ]] || fail "more than one assignment: the worker was rebalanced"
note "ok: ${took}s migration with max.poll.interval.ms=3000, one assignment, no revocation"
