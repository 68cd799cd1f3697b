#!/usr/bin/env bash
# End to end with no command typed: a dataset entity appears in the real Backstage catalog
# -> ferry-producer serve publishes one event -> ferry-worker migrates the objects (checked
# byte for byte) -> the catalog's status write-back module (deploy/backstage/) reads
# GET /v1/datasets/NAME from the producer and the entity shows ferry.io/status: done
# through the catalog API. That write-back changes the entity's etag, and must not start a
# second migration: still one event, one DatasetMigrated.
# The same producer process also runs the HTTP ingest (sources combined, one Kafka producer,
# one Redis connection): the scaffolder Template of deploy/backstage/, as the catalog
# serves it, is rendered with sample parameters and its request body POSTed -> 202.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/producer_lib.sh"
require_backstage

NS="e2e$(date +%s)$$"
DS="orders-$RANDOM"
CAT="$FERRY_STACK_BACKSTAGE_CATALOG_DIR/$NS.yaml"
trap 'rm -f "$CAT"; cleanup' EXIT
SRC_B=$(bucket bs-src); DST_B=$(bucket bs-dst)
"$S3TOOL" mb "$SRC_B" >/dev/null
"$S3TOOL" mb "$DST_B" >/dev/null
read -r n_objects n_bytes < <("$S3TOOL" seed "s3://$SRC_B/orders/" --count 60 --min-size 0 --max-size 50000 --seed 5 | awk '{print $1, $2}')
note "seeded $n_objects objects, $n_bytes bytes in s3://$SRC_B/orders/"

# The producer's HTTP API where the catalog module looks for it (scripts/stack chose it).
start_producer p1 --log-level debug \
    -X "backstage.filter=kind=component,spec.type=dataset,metadata.namespace=$NS" \
    -X backstage.poll_interval_ms=500 \
    --http "$FERRY_STACK_PRODUCER_HTTP" --http-token-file "$FERRY_STACK_PRODUCER_TOKEN_FILE" --ingest
wait_until 20 grep -q 'http: listening' "$WORK/p1.log" || fail "producer did not start: $(tail -3 "$WORK/p1.log")"
start_worker w1 >/dev/null

t0=$(now_ms)
cat > "$CAT.tmp" <<EOF
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: $DS
  namespace: $NS
  description: Orders, migrated by ferry in an end-to-end test.
  annotations:
    ferry.io/source: s3://$SRC_B/orders/
    ferry.io/target: s3://$DST_B/orders/
spec: { type: dataset, lifecycle: production, owner: team-data }
EOF
mv "$CAT.tmp" "$CAT"

wait_until 60 has_n_events_for "$DS" 1 || fail "no event for the new entity"
note "event published $(( $(events_for "$DS" | jq .timestamp_ms) - t0 )) ms after the YAML was written"
wait_until 180 status_is "$DS" done || { tail -20 "$WORK/w1.log" >&2; fail "migration did not finish"; }
[[ $(state_field "$DS" objects_done) == "$n_objects" && $(state_field "$DS" bytes_done) == "$n_bytes" ]] \
    || fail "counts: $(state_field "$DS" objects_done) objects, $(state_field "$DS" bytes_done) bytes"
"$S3TOOL" compare "s3://$SRC_B/orders/" "s3://$DST_B/orders/" >/dev/null || fail "target differs from source"
note "migrated $n_objects objects $(( $(now_ms) - t0 )) ms after the YAML was written"

status_done() { [[ $(entity_field "$NS" "$DS" '.metadata.annotations["ferry.io/status"] // empty') == done ]]; }
wait_until 60 status_done || { entity_json "$NS" "$DS" >&2; fail "the entity never showed ferry.io/status: done"; }
ent=$(entity_json "$NS" "$DS")
ann() { jq -r --arg k "$1" '.metadata.annotations[$k] // empty' <<<"$ent"; }
[[ $(ann ferry.io/progress) == 100% ]] || fail "progress: $(ann ferry.io/progress)"
[[ $(ann ferry.io/objects) == "$n_objects/$n_objects" ]] || fail "objects: $(ann ferry.io/objects)"
[[ $(ann ferry.io/event-id) == $(events_for "$DS" | jq -r .event_id) ]] || fail "event-id annotation"
[[ -n $(ann ferry.io/finished-at) ]] || fail "no finished-at"
note "catalog shows ferry.io/status: done, progress $(ann ferry.io/progress), objects $(ann ferry.io/objects), finished $(ann ferry.io/finished-at), $(( $(now_ms) - t0 )) ms after the YAML was written"

# The write-back changed the entity (new etag) under the poller's eyes: still one event.
etag=$(jq -r .metadata.etag <<<"$ent")
first_etag=$(events_for "$DS" | jq -r .catalog_etag)
[[ "$etag" != "$first_etag" ]] || fail "the write-back did not change the etag (nothing was tested)"
polls_before=$(grep -c 'backstage: polled' "$WORK/p1.log")
wait_until 30 bash -c "(( \$(grep -c 'backstage: polled' '$WORK/p1.log') >= $polls_before + 6 ))" || fail "producer stopped polling"
# A few catalog processing cycles more, counted in the producer's polls, not seconds.
wait_until 60 bash -c "(( \$(grep -c 'backstage: polled' '$WORK/p1.log') >= $polls_before + 12 ))" \
    || fail "waited 60 s for 6 more catalog polls after the write-back"
[[ $(count_for "$DS") -eq 1 ]] || fail "the status write-back triggered another event"
[[ $(kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_MIGRATED" -e -q -f '%k\n' 2>/dev/null | grep -cx "$DS") -eq 1 ]] \
    || fail "expected exactly one DatasetMigrated"
[[ $(state_field "$DS" event_id) == $(events_for "$DS" | jq -r .event_id) ]] || fail "a second migration ran"
note "ok: catalog change -> 1 event -> migrated -> ferry.io/status: done in the catalog; etag $first_etag -> $etag, no second migration"

# --- the scaffolder Template's step, as Backstage would send it ---------------------------------
tpl=$(catalog_get /entities/by-name/template/default/ferry-migrate-dataset) || fail "Template not in the catalog"
step=$(jq -c '.spec.steps[] | select(.action == "http:backstage:request") | .input' <<<"$tpl")
[[ $(jq -r .method <<<"$step") == POST && $(jq -r .path <<<"$step") == */v1/events ]] || fail "template step: $step"
params=$(jq -n --arg d "$DS-tpl" --arg s "s3://$SRC_B/orders/" --arg t "s3://$DST_B/orders-tpl/" \
    '{dataset_name: $d, source: $s, target: $t, overwrite: "if_different", verify: true}')
body=$(jq -c --argjson p "$params" 'walk(if type == "string" then
        ((capture("^\\$\\{\\{ *parameters\\.(?<k>[a-z_]+) *\\}\\}$") | $p[.k]) //
         (if test("^\\$\\{\\{ *user\\.") then "tester" else . end))
      else . end)' <<<"$(jq .body <<<"$step")")
code=$(curl -s -o "$WORK/tpl.resp" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $(<"$FERRY_STACK_PRODUCER_TOKEN_FILE")" --data-binary "$body" \
    "http://$FERRY_STACK_PRODUCER_HTTP/v1/events")
[[ $code == 202 ]] || fail "the template's request got $code: $(cat "$WORK/tpl.resp") (body $body)"
wait_until 10 has_n_events_for "$DS-tpl" 1 || fail "no event for the template's request"
[[ $(events_for "$DS-tpl" | jq -r '.origin + " " + .requested_by') == "api tester" ]] || fail "template event: $(events_for "$DS-tpl")"
note "ok: the scaffolder Template's request body -> 202 and one event (origin api)"
