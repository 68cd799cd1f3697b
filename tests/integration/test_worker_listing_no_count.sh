#!/usr/bin/env bash
# No serial count before the first copy (issue 12): without fan-out (fanout.min_objects=0)
# a dataset of many pages is copied while it is listed, never counted first. While it
# runs, its total is a lower bound ("n of >= m": the state's objects_total_lower_bound,
# `ferry-worker status` and its JSON say so) that grows as pages are listed; when the
# listing ends the total is exact and the dataset is done with exact counts.
#
# With fan-out on (parts 2-4), a new dataset is not counted before its first copy either:
# it is copied at once and counted only once the copy has listed more than
# fanout.copy_before_count keys. Part 2 counts the LIST requests through a faultproxy: a
# dataset below that is listed once (counting it first listed it twice, and the first copy
# waited for the count). Part 3: past
# copy_before_count but below fanout.min_objects, the count decides "no split" and the
# copy goes on from its checkpoint. Part 4: past fanout.min_objects, the dataset is split
# after all, and its chunks copy every key exactly once between them.
source "$(dirname "$0")/lib.sh"

U=$(tr -cd 0-9 <<<"$RUN_ID" | tail -c 12)
N=400
SRC_B=$(bucket nc-src); DST_B=$(bucket nc-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ "$N" 2000)
"$S3TOOL" mb "$DST_B" >/dev/null
DS=nc-$U
# 20 keys a page and 100 requests/s: about 4 s of copying, long enough to watch it run.
start_worker nc1 -X fanout.min_objects=0 -X copy.page_size=20 -X copy.max_requests_per_second=100 \
    -X copy.checkpoint_interval_ms=100 -X log.level=debug
wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/nc1.log" || fail "worker never joined"
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"

lower_bound_seen() {
    [[ "$(state_field "$DS" objects_total_lower_bound)" == 1 ]] || return 1
    local t; t=$(state_field "$DS" objects_total)
    (( t > 0 && t < OBJS )) || return 1
    "$WORKER" status --json >"$WORK/status.json" 2>/dev/null
    python3 - "$WORK/status.json" "$DS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = [x for x in d.get("migrations", []) if x.get("dataset") == sys.argv[2]]
sys.exit(0 if m and m[0].get("objects_total_lower_bound") is True else 1)
PY
    "$WORKER" status >"$WORK/status.txt" 2>/dev/null
    grep "$DS" "$WORK/status.txt" | has "/>=$t\b\|/>=[0-9]"
}
wait_until 60 lower_bound_seen || fail "never saw a running total that is a lower bound (state: total $(state_field "$DS" objects_total), lower bound '$(state_field "$DS" objects_total_lower_bound)', status $(state_field "$DS" status))"
wait_until 120 status_is "$DS" done || fail "not done (status $(state_field "$DS" status))"
assert_done_exact "$DS" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
[[ "$(state_field "$DS" objects_total)" == "$OBJS" ]] || fail "final total $(state_field "$DS" objects_total), expected $OBJS"
[[ -z "$(state_field "$DS" objects_total_lower_bound)" ]] || fail "done, but the total is still marked a lower bound"
# never counted before copying
! grep -q 'objects to migrate' "$WORK/nc1.log" || fail "the source was counted before copying"
# the first copy came before the last page was listed (copy while listing)
first_copy=$(awk '/"msg":"copied /{print NR; exit}' "$WORK/nc1.log")
last_page=$(awk '/"msg":"page done/{n = NR} END{print n + 0}' "$WORK/nc1.log")
(( first_copy > 0 && first_copy < last_page )) || fail "no copy before the listing ended"
note "ok: $OBJS objects copied while listing, total shown as a lower bound until the listing ended"
kill -TERM "$LAST_PID"; wait "$LAST_PID" || fail "worker nc1 exited with $?"

# --- part 2: fan-out on, a dataset below fanout.copy_before_count: one listing ---------
start_faultproxy "$FERRY_S3_ENDPOINT" --kind none
DS2=nc2-$U
start_worker nc2 -X s3.endpoint="$FAULTPROXY_EP" -X fanout.min_objects=1000 \
    -X fanout.chunk_objects=100 -X fanout.copy_before_count=1000 -X copy.page_size=20
wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/nc2.log" || fail "worker nc2 never joined"
lists_now() { # LIST requests through the proxy so far (no file before its first request)
    python3 -c 'import json,os,sys; p=sys.argv[1]; print(json.load(open(p))["by_op"].get("list", 0) if os.path.exists(p) else 0)' "$WORK/counts.json"
}
lists0=$(lists_now)
publish "$DS2" "s3://$SRC_B/data/" "s3://$DST_B/copy2/"
wait_until 120 status_is "$DS2" done || fail "$DS2 not done (status $(state_field "$DS2" status))"
assert_done_exact "$DS2" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy2/"
lists=$(( $(lists_now) - lists0 ))
# 400 keys, 20 a page: 20 pages, plus an empty one if the server cuts exactly at the end.
# Counting first listed them all once more (1,000 keys a LIST: 2 more requests here, 23)
(( lists <= N / 20 + 1 )) || fail "$DS2: $lists LIST requests for $((N / 20)) pages: listed more than once"
! grep -q 'objects to migrate' "$WORK/nc2.log" || fail "$DS2 was counted before copying"
[[ "$(state_field "$DS2" objects_total)" == "$OBJS" ]] || fail "$DS2: total $(state_field "$DS2" objects_total)"
note "ok: fan-out on, $OBJS objects copied with one listing ($lists LIST requests), no count"
kill -TERM "$LAST_PID"; wait "$LAST_PID" || fail "worker nc2 exited with $?"

# copy_past_threshold N MIN_OBJECTS: worker ncN (copy_before_count 100, 20 keys a page)
# copies the dataset ncN-$U to copyN/; asserts it is done exactly and stopped for the count
copy_past_threshold() {
    local n=$1 ds=nc$1-$U
    start_worker "nc$n" -X fanout.min_objects="$2" -X fanout.chunk_objects=100 \
        -X fanout.copy_before_count=100 -X copy.page_size=20
    wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/nc$n.log" || fail "worker nc$n never joined"
    publish "$ds" "s3://$SRC_B/data/" "s3://$DST_B/copy$n/"
    wait_until 180 status_is "$ds" done || fail "$ds not done (status $(state_field "$ds" status))"
    assert_done_exact "$ds" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy$n/"
    has 'more than 100 objects listed: counting' "$WORK/nc$n.log" || fail "$ds: the copy did not stop for the count"
}

# --- part 3: past copy_before_count, below min_objects: counted, copied on ------------
DS3=nc3-$U
copy_past_threshold 3 1000
has "\"$OBJS objects to migrate\"" "$WORK/nc3.log" || fail "$DS3: no exact count of $OBJS"
! has 'split into' "$WORK/nc3.log" || fail "$DS3 was split below fanout.min_objects"
[[ "$(state_field "$DS3" objects_copied)" == "$OBJS" ]] || fail "$DS3: objects_copied $(state_field "$DS3" objects_copied), expected every object once"
note "ok: counted after the first 100 keys were copied, then copied on ($OBJS objects)"
kill -TERM "$LAST_PID"; wait "$LAST_PID" || fail "worker nc3 exited with $?"

# --- part 4: past min_objects: split after all ------------------------------------------
DS4=nc4-$U
copy_past_threshold 4 200
has 'split into chunk events' "$WORK/nc4.log" || fail "$DS4 was not split"
[[ "$(chunks_copied "$DS4")" == "$OBJS" ]] || fail "$DS4: chunks copied $(chunks_copied "$DS4") objects, expected $OBJS"
note "ok: split after the first 100 keys were copied; the chunks copied all $OBJS"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log 2>/dev/null; then fail "sanitizer report (files above)"; fi
