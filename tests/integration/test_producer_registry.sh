#!/usr/bin/env bash
# ferry-producer serve --registry: a directory of JSON files (and a single file), watched
# with inotify; every change exactly one event, nothing from a malformed or half-written
# file (its last good contents stay), nothing for removals, nothing after a restart.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/producer_lib.sh"
no_backstage

REG="$WORK/registry"
mkdir -p "$REG"
ARGS=(--log-level debug --registry "$REG" -X registry.debounce_ms=100)
B="reg$(date +%s)$$"

entry() { # NAME TARGET [extra json]
    printf '{"dataset_name":"%s","source":"s3://%s-src/%s/","target":"%s"%s}' "$1" "$B" "$1" "$2" "${3:-}"
}
# atomic FILE CONTENT : how careful writers do it (temp file + rename)
atomic() { printf '%s\n' "$2" > "$REG/.$1.tmp" && mv "$REG/.$1.tmp" "$REG/$1"; }
settle() { sleep 1.5; } # debounce + publish, with room to spare

start_producer p1 "${ARGS[@]}"; P=$PRODUCER_PID

# --- add ---------------------------------------------------------------------------------
t0=$(now_ms)
atomic a.json "{\"datasets\":[$(entry d1 "s3://$B-dst/d1/")]}"
wait_until 30 has_n_events_for d1 1 || fail "d1 not published"
lat1=$(( $(events_for d1 | jq .timestamp_ms) - t0 ))
ev=$(events_for d1)
[[ $(jq -r .origin <<<"$ev") == registry ]] || fail "origin: $ev"
[[ $(jq -r .catalog_ref <<<"$ev") == registry:d1 ]] || fail "catalog_ref: $ev"
[[ $(jq -r .catalog_etag <<<"$ev") =~ ^[0-9a-f]{16}$ ]] || fail "catalog_etag (spec hash): $ev"
[[ $(jq -r .requested_by <<<"$ev") == registry ]] || fail "requested_by: $ev"

atomic a.json "{\"datasets\":[$(entry d1 "s3://$B-dst/d1/"),$(entry d2 "s3://$B-dst/d2/" ',"overwrite":"never","exclude":["tmp/"]')]}"
wait_until 30 has_n_events_for d2 1 || fail "d2 not published"
settle
[[ $(count_for d1) -eq 1 ]] || fail "adding d2 re-published d1"
[[ $(events_for d2 | jq -r .overwrite) == never ]] || fail "d2 options lost"
note "ok: add -> one event each (registry origin, ref, spec hash)"

# --- change / reformat -----------------------------------------------------------------------
t0=$(now_ms)
atomic a.json "{\"datasets\":[$(entry d1 "s3://$B-dst/d1-v2/"),$(entry d2 "s3://$B-dst/d2/" ',"overwrite":"never","exclude":["tmp/"]')]}"
wait_until 30 has_n_events_for d1 2 || fail "d1 change not published"
lat2=$(( $(events_for d1 | jq -s 'sort_by(.offset) | .[1].timestamp_ms') - t0 ))
# Same content, other layout and order: no event.
atomic a.json "{
  \"version\": 1,
  \"datasets\": [
    $(entry d2 "s3://$B-dst/d2/" ',"exclude":["tmp/"],"overwrite":"never"'),
    $(entry d1 "s3://$B-dst/d1-v2/" ',"verify":true')
  ]
}"
settle
[[ $(count_all) -eq 3 ]] || fail "a reformatted file published events ($(count_all))"
note "ok: change -> one event; same content reformatted -> none"

# --- half-written files ------------------------------------------------------------------------
# A writer that truncates and writes in two steps (no rename): the first close leaves
# half a file. Nothing may be published from it, the last good contents stay.
full="{\"datasets\":[$(entry d1 "s3://$B-dst/d1-v3/"),$(entry d2 "s3://$B-dst/d2/" ',"overwrite":"never","exclude":["tmp/"]')]}"
printf '%s' "${full:0:60}" > "$REG/a.json"
settle
grep -q "a.json rejected, nothing published from it; keeping its last good contents (2 datasets)" "$WORK/p1.log" \
    || fail "half-written a.json not reported"
[[ $(count_all) -eq 3 ]] || fail "something was published from a half-written file"
printf '%s\n' "$full" > "$REG/a.json"
wait_until 30 has_n_events_for d1 3 || fail "the completed file was not published"
# A new file that is half-written, then completed.
printf '{"datasets":[%s' "$(entry d3 "s3://$B-dst/d3/")" > "$REG/b.json"
settle
[[ $(count_for d3) -eq 0 ]] || fail "d3 published from a half-written new file"
printf '{"datasets":[%s]}\n' "$(entry d3 "s3://$B-dst/d3/")" > "$REG/b.json"
wait_until 30 has_n_events_for d3 1 || fail "d3 not published once b.json was complete"
# A complete file with an invalid entry (not an s3:// target) is rejected whole.
atomic b.json "{\"datasets\":[$(entry d3 "s3://$B-dst/d3/"),$(entry d4 "https://$B-dst/d4/")]}"
settle
grep -q "b.json rejected.*datasets\[1\] (d4): target" "$WORK/p1.log" || fail "invalid entry not reported"
[[ $(count_for d4) -eq 0 && $(count_for d3) -eq 1 ]] || fail "published from a rejected file"
note "ok: half-written (existing and new file) and invalid files -> nothing, last good kept"

# --- removals ------------------------------------------------------------------------------------
total=$(count_all)
atomic a.json "{\"datasets\":[$(entry d1 "s3://$B-dst/d1-v3/")]}"
wait_until 30 grep -q "registry:d2 left the catalog" "$WORK/p1.log" || fail "removal of d2 not logged"
rm "$REG/b.json"
wait_until 30 grep -q "registry:d3 left the catalog" "$WORK/p1.log" || fail "deleted file not noticed"
settle
[[ $(count_all) -eq $total ]] || fail "removals published events"
note "ok: entry removed, file deleted -> logged, no event"

# --- restart: nothing ------------------------------------------------------------------------------
stop_producer "$P" || fail "producer exited non-zero on SIGTERM"
start_producer p2 "${ARGS[@]}"; P=$PRODUCER_PID
wait_until 30 grep -q "registry: loaded $REG/a.json" "$WORK/p2.log" || fail "restarted producer did not load"
settle
[[ $(count_all) -eq $total ]] || fail "restart re-published"
# a dataset that was removed comes back unchanged: no event either
atomic a.json "{\"datasets\":[$(entry d1 "s3://$B-dst/d1-v3/"),$(entry d2 "s3://$B-dst/d2/" ',"overwrite":"never","exclude":["tmp/"]')]}"
settle
[[ $(count_all) -eq $total ]] || fail "a returning, unchanged dataset was re-published"
stop_producer "$P" || fail "producer exited non-zero"
note "ok: restart -> no event; returning unchanged dataset -> no event"

# --- single-file registry, replaced by rename (editors, config management) ---------------------
SINGLE="$WORK/single/registry.json"
mkdir -p "$WORK/single"
start_producer p3 --registry "$SINGLE" -X registry.debounce_ms=100; P=$PRODUCER_PID
sleep 0.5
printf '{"datasets":[%s]}\n' "$(entry d5 "s3://$B-dst/d5/")" > "$WORK/single/.registry.json.tmp"
mv "$WORK/single/.registry.json.tmp" "$SINGLE"
wait_until 30 has_n_events_for d5 1 || fail "single-file registry: d5 not published"
printf 'garbage' > "$WORK/single/other.json"   # another file in the directory: ignored
settle
grep -q other.json "$WORK/p3.log" && fail "a file next to the registry file was read"
stop_producer "$P" || fail "producer exited non-zero"
[[ $(events | jq -r .event_id | sort | uniq -d | wc -l) -eq 0 ]] || fail "an event id appears twice"
note "LATENCY registry file change -> event on Kafka: $lat1 ms (add), $lat2 ms (change)"
note "ok: single file replaced by rename -> one event; $(count_all) events in total"
