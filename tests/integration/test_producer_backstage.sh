#!/usr/bin/env bash
# ferry-producer serve --backstage against a REAL Backstage catalog backend (tests/backstage,
# started by FERRY_STACK_BACKSTAGE=1 scripts/stack up): each change of a dataset entity is
# exactly one DatasetOnboard event.
#   register -> 1 event; target annotation changed -> +1; unrelated field -> 0;
#   producer restarted -> 0; entity deleted -> 0; catalog stopped for 4 failed polls
#   (the issue says 30 s; 4 attempts show the same backoff, ~7 s) -> backoff, recovery, and the
#   change made meanwhile published once; invalid annotations -> 0 (warned once);
#   non-dataset entities and datasets without annotations -> 0.
# Pagination is exercised with a page size of 2. Prints the YAML-change -> event latency.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/producer_lib.sh"
require_backstage

NS="t$(date +%s)$$"           # this test's entities live in their own namespace
CAT="$FERRY_STACK_BACKSTAGE_CATALOG_DIR/$NS.yaml"
POLL_MS=500
PROD_ARGS=(--log-level debug -X "backstage.filter=kind=component,spec.type=dataset,metadata.namespace=$NS"
           -X backstage.poll_interval_ms=$POLL_MS -X backstage.page_size=2
           -X backstage.backoff_max_ms=4000 -X backstage.timeout_ms=2000)
BACKSTAGE_STOPPED=0
trap '[[ $BACKSTAGE_STOPPED == 1 ]] && "$SRC/scripts/stack" start-service backstage >/dev/null 2>&1; rm -f "$CAT"; cleanup' EXIT

# The catalog file: entity name -> target (absent = not in the file), description.
declare -A TARGET DESC EXTRA
write_catalog() {
    local name
    {
        for name in "${!TARGET[@]}"; do
            cat <<EOF
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: $name
  namespace: $NS
  description: "${DESC[$name]:-dataset $name}"
  annotations:
    ferry.io/source: s3://legacy-$NS/$name/
    ferry.io/target: ${TARGET[$name]}
${EXTRA[$name]:-}
spec: { type: dataset, lifecycle: production, owner: team-data }
EOF
        done
        # Never ferry's: a service with ferry annotations, a dataset without them.
        cat <<EOF
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: a-service
  namespace: $NS
  annotations: { ferry.io/source: "s3://legacy-$NS/svc/", ferry.io/target: "s3://lake-$NS/svc/" }
spec: { type: service, lifecycle: production, owner: team-data }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: plain-dataset
  namespace: $NS
spec: { type: dataset, lifecycle: production, owner: team-data }
EOF
    } > "$CAT.tmp"
    mv "$CAT.tmp" "$CAT"   # atomic: the catalog never reads half a file
}

# wait_quiet_polls LOG MARK : until two catalog polls logged after line MARK of LOG
# published nothing. The second started after MARK, so every change the catalog showed
# by then was seen and, if it was an event, published: counts can be asserted.
wait_quiet_polls() {
    wait_until 60 bash -c "(( \$(tail -n +$(( $2 + 1 )) '$1' | grep -c 'backstage: polled .* 0 published') >= 2 ))" \
        || fail "waited 60 s for two catalog polls that publish nothing after line $2 of $(basename "$1")"
}
marker() { wc -l < "$1"; }

LAT=()
# change_and_measure NAME -> waits for event number N+1 of NAME; records the latency
# from the YAML write to the event's Kafka timestamp.
wait_event() { # NAME N T0
    wait_until 60 has_n_events_for "$1" "$2" || fail "no event #$2 for $1 within 60 s ($(count_for "$1") events)"
    local ts
    ts=$(events_for "$1" | jq -s "sort_by(.offset) | .[$2 - 1].timestamp_ms")
    LAT+=($(( ts - $3 )))
    note "$1: event #$2 $(( ts - $3 )) ms after the YAML change"
}

# --- register: exactly one event per dataset -----------------------------------------
TARGET[orders]="s3://lake-$NS/orders/"
TARGET[clicks]="s3://lake-$NS/clicks/"
TARGET[users]="s3://lake-$NS/users/"
EXTRA[bad]='    ferry.io/overwrite: sometimes'
TARGET[bad]="s3://lake-$NS/bad/"
start_producer p1 "${PROD_ARGS[@]}"; P=$PRODUCER_PID
t0=$(now_ms); write_catalog
wait_event orders 1 "$t0"
wait_until 30 has_n_events_for clicks 1 || fail "clicks not published"
wait_until 30 has_n_events_for users 1 || fail "users not published"
ev=$(events_for orders)
[[ $(jq -r .origin <<<"$ev") == backstage ]] || fail "origin: $ev"
[[ $(jq -r .catalog_ref <<<"$ev") == "component:$NS/orders" ]] || fail "catalog_ref: $ev"
[[ -n $(jq -r '.catalog_etag // empty' <<<"$ev") ]] || fail "no catalog_etag: $ev"
[[ $(jq -r .requested_by <<<"$ev") == backstage:team-data ]] || fail "requested_by: $ev"
[[ $(jq -r .target <<<"$ev") == "s3://lake-$NS/orders/" ]] || fail "target: $ev"
grep -q 'component:'"$NS"'/bad not published: ferry.io/overwrite' "$WORK/p1.log" || fail "invalid annotation not reported"
grep -q '3 page(s)' "$WORK/p1.log" || fail "expected 5 entities over 3 pages of 2 (cursor pagination)"
wait_quiet_polls "$WORK/p1.log" "$(marker "$WORK/p1.log")"
[[ $(count_all) -eq 3 ]] || { events >&2; fail "expected exactly 3 events, got $(count_all)"; }
[[ $(grep -c 'bad not published' "$WORK/p1.log") -eq 1 ]] || fail "the invalid entity was reported more than once"
note "ok: registered -> 1 event each (origin, ref, etag checked); invalid and non-ferry entities -> none"

# --- target annotation changed: exactly one more ---------------------------------------
TARGET[orders]="s3://lake-$NS/orders-v2/"
t0=$(now_ms); write_catalog
wait_event orders 2 "$t0"
[[ $(events_for orders | jq -s -r 'sort_by(.offset) | .[1].target') == "s3://lake-$NS/orders-v2/" ]] || fail "second event has the wrong target"
# more samples for the latency
for i in 1 2 3 4; do
    TARGET[clicks]="s3://lake-$NS/clicks-v$i/"
    t0=$(now_ms); write_catalog
    wait_event clicks $(( i + 1 )) "$t0"
done
note "ok: annotation changes -> one event each"

# --- unrelated field changed: the etag moves, no event ----------------------------------
etag=$(entity_field "$NS" users .metadata.etag)
DESC[users]="now with a better description"
write_catalog
wait_until 30 bash -c "[[ \$(curl -sf -H '$BACKSTAGE_AUTH' '$FERRY_BACKSTAGE_URL/api/catalog/entities/by-name/component/$NS/users' | jq -r .metadata.etag) != '$etag' ]]" \
    || fail "the catalog never showed the description change"
wait_quiet_polls "$WORK/p1.log" "$(marker "$WORK/p1.log")"
[[ $(count_for users) -eq 1 ]] || fail "a description change published an event"
note "ok: unrelated field changed (etag $etag -> new) -> no event"

# --- producer restart: nothing again -----------------------------------------------------
total=$(count_all)
stop_producer "$P" || fail "producer exited non-zero on SIGTERM"
start_producer p2 "${PROD_ARGS[@]}"; P=$PRODUCER_PID
wait_until 30 bash -c "[[ \$(grep -c 'polled .* 0 published, 3 unchanged, 1 invalid' '$WORK/p2.log') -ge 3 ]]" \
    || { tail -5 "$WORK/p2.log" >&2; fail "restarted producer did not poll 3 times"; }
[[ $(count_all) -eq $total ]] || fail "restart re-published ($(count_all) events, had $total)"
note "ok: producer restarted -> no event"

# --- entity deleted: no event ----------------------------------------------------------------
unset 'TARGET[users]'
write_catalog
# Backstage orphans the entity, then its cleanup removes it: on a loaded machine that
# takes minutes.
wait_until 300 grep -q "component:$NS/users left the catalog" "$WORK/p2.log" \
    || fail "waited 300 s for the producer to log that component:$NS/users left the catalog (orphaned, then removed by Backstage)"
[[ $(count_all) -eq $total ]] || fail "deleting an entity published an event"
note "ok: entity deleted -> logged, no event"

# --- catalog down for 4 failed polls: backoff, recovery, no duplicates --------------------
"$SRC/scripts/stack" stop-service backstage >/dev/null 2>&1 || fail "could not stop backstage"
BACKSTAGE_STOPPED=1
TARGET[users]="s3://lake-$NS/users-v2/"   # changed (and re-added) while the catalog is down
write_catalog
wait_until 90 bash -c "(( \$(grep -c 'backstage: poll failed' '$WORK/p2.log') >= 4 ))" \
    || fail "waited 90 s for 4 failed catalog polls while it is down, saw $(grep -c 'backstage: poll failed' "$WORK/p2.log")"
failed_polls=$(grep -c 'backstage: poll failed' "$WORK/p2.log")
# Backoff, read from what the producer logged rather than from a time window: attempt k
# waits between half and all of min(1000 ms * 2^(k-1), backstage.backoff_max_ms=4000).
while read -r attempt delay; do
    ceiling=$(( 1000 << (attempt > 3 ? 2 : attempt - 1) ))
    (( ceiling > 4000 )) && ceiling=4000
    (( delay >= ceiling / 2 && delay <= ceiling )) ||
        fail "failed poll attempt $attempt retried in $delay ms, expected $((ceiling / 2))..$ceiling (backoff)"
done < <(grep -o 'attempt [0-9]*): .*retrying in [0-9]* ms' "$WORK/p2.log" | sed 's/attempt \([0-9]*\)).*retrying in \([0-9]*\) ms/\1 \2/')
"$SRC/scripts/stack" start-service backstage >/dev/null 2>&1 || fail "could not restart backstage"
BACKSTAGE_STOPPED=0
wait_until 60 grep -q 'catalog polled again after' "$WORK/p2.log" || fail "no recovery logged"
wait_until 90 has_n_events_for users 2 || fail "the change made while the catalog was down was not published"
wait_quiet_polls "$WORK/p2.log" "$(marker "$WORK/p2.log")"
[[ $(count_for users) -eq 2 ]] || fail "users: $(count_for users) events, expected 2"
[[ $(count_for orders) -eq 2 && $(count_for clicks) -eq 5 ]] || fail "duplicates after the outage: orders $(count_for orders), clicks $(count_for clicks)"
note "ok: catalog down -> $failed_polls failed polls with backoff, recovered, the change published once"

stop_producer "$P" || fail "producer exited non-zero"
[[ $(events | jq -r .event_id | sort | uniq -d | wc -l) -eq 0 ]] || fail "an event id appears twice"
note "LATENCY catalog YAML change -> event on Kafka: $(printf '%s\n' "${LAT[@]}" | stats)"
note "ok: $(count_all) events in total, each change exactly once"
