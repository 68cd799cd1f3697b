#!/usr/bin/env bash
# Issue 13.4: a page whose objects did not all settle (copied and verified, identical, or
# recorded as failed) is never taken as done. The worker's test hook
# FERRY_TEST_UNSETTLE_KEY drops the first completion of one copy, as if its request had
# never run. The engine used to turn such a page into success: the dataset ended "done"
# with that object missing at the target. Now the page tries the object again and the
# migration ends done with every object byte-identical. With copy.request_retries=0 the
# page fails the attempt with class incomplete-page instead, and the next attempt resumes
# from the checkpoint (which never passed the object) and copies it.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket us-src); DST_B=$(bucket us-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ 30 3000)
"$S3TOOL" mb "$DST_B" >/dev/null
DS=us-$RANDOM$RANDOM
KEY=data/dir05/obj-000022.bin   # a page in the middle (s3tool seed's key layout)

publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
FERRY_TEST_UNSETTLE_KEY=$KEY start_worker u1 -X copy.page_size=10 -X copy.max_in_flight=4
wait_until 60 bash -c "[[ \$(redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$DS}:state' status) =~ ^(done|failed)$ ]]" \
    || { tail -20 "$WORK/u1.log" >&2; fail "migration did not finish"; }
grep -q "test hook: dropping the completion of $KEY" "$WORK/u1.log" || fail "the test hook never fired"
assert_done_exact "$DS" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
grep -q "never finished their copy; trying them again" "$WORK/u1.log" \
    || fail "the unsettled object was not noticed (see $WORK/u1.log)"
kill -TERM "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true

DS2=$DS-b
publish "$DS2" "s3://$SRC_B/data/" "s3://$DST_B/copy2/"
FERRY_TEST_UNSETTLE_KEY=$KEY start_worker u2 -X copy.page_size=10 -X copy.max_in_flight=4 \
    -X copy.request_retries=0 -X retry.base_ms=50 -X retry.max_ms=200
wait_until 60 bash -c "[[ \$(redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$DS2}:state' status) == done ]]" \
    || { tail -20 "$WORK/u2.log" >&2; fail "$DS2 did not finish (status $(state_field "$DS2" status))"; }
grep -q '"msg":"attempt 1 failed: incomplete-page: ' "$WORK/u2.log" || fail "no attempt failed with class incomplete-page"
assert_done_exact "$DS2" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy2/"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "ok: an unsettled page was retried, not taken as done"
