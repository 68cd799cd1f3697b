#!/usr/bin/env bash
# No serial count before the first copy (issue 12): without fan-out (fanout.min_objects=0)
# a dataset of many pages is copied while it is listed, never counted first. While it
# runs, its total is a lower bound ("n of >= m": the state's objects_total_lower_bound,
# `ferry-worker status` and its JSON say so) that grows as pages are listed; when the
# listing ends the total is exact and the dataset is done with exact counts.
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
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "ok: $OBJS objects copied while listing, total shown as a lower bound until the listing ended"
