#!/usr/bin/env bash
# Scenario 8 (libs3): the opt-in Signature V2 backend (Debian's libs3 2.0) migrates
# datasets -- on S3Proxy with V2 authentication, and on moto (which checks no signature
# but reads paths and answers XML its own way).
#  1. A key with a space fails that object alone (class s3-invalid-key, in the report):
#     libs3 2.0 sends the space as '+', which moto keeps as a plus -- the object was written
#     as "with+space/a+b.txt" and verified under that wrong name, the dataset done. Every
#     other object is copied.
#  2. A large dataset is split with fanout.delimiter=/ set, which libs3 cannot list (it
#     garbles non-ASCII common prefixes): the split walks the keys instead, says so, and
#     every object is copied once.
#  3. https without the opt-in is refused (libs3 2.0 does not verify certificates).
#  4. Error pages instead of S3's XML, on a fifth of the requests (faultproxy): a 500 HTML
#     page, as moto's own errors are (libs3 2.0 calls it XmlParseFailure, and that
#     dead-lettered the dataset as a client error), and a 502 from a "load balancer"
#     (libs3 2.0 reports a CopyObject answered so as done; the HEAD after it found
#     nothing, a permanent 404). Both are retried now, and the dataset is done.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket v2-src); DST_B=$(bucket v2-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 60 50000)
SPACED="data/with space/a b.txt" # one of the seed's awkward keys
"$S3TOOL" ls "s3://$SRC_B/data/" | has -F " $SPACED" || fail "no '$SPACED' in the seed"
"$S3TOOL" mb "$DST_B"
DS=v2-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker v1 -X s3.backend=libs3 -X fanout.min_objects=100 -X fanout.chunk_objects=200 \
    -X fanout.delimiter=/
wait_until 120 status_is "$DS" failed_objects ||
    { tail -20 "$WORK/v1.log" >&2; fail "$DS did not end failed_objects (status $(state_field "$DS" status))"; }
for f in "objects_copied $((N - 1))" "objects_failed 1"; do
    set -- $f
    [[ "$(state_field "$DS" "$1")" == "$2" ]] || fail "$DS: $1 $(state_field "$DS" "$1"), expected $2"
done
REPORT=$(state_field "$DS" report)
redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$REPORT" "$SPACED" |
    has '"outcome":"failed","class":"s3-invalid-key","message":".*keys with spaces need the sigv4 backend' ||
    fail "report line for '$SPACED': $(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "$REPORT" "$SPACED")"
"$S3TOOL" ls "s3://$DST_B/copy/" | has 'with+space' && fail "an object was written under a '+' for a space"
# every other object is there, byte for byte
"$S3TOOL" rm "$SRC_B" "$SPACED" || fail "removing '$SPACED' from the source"
"$S3TOOL" compare "s3://$SRC_B/data/" "s3://$DST_B/copy/" >/dev/null || fail "$DS: target differs from source"

# libs3 2.0 does not verify TLS certificates: https is refused unless explicitly allowed.
# The worker refuses at startup and exits by itself; 60 s is a generous bound for that.
rc=0
out=$(FERRY_S3_ENDPOINT=https://127.0.0.1:1 timeout 60 "$WORKER" -X s3.backend=libs3 -X kafka.brokers=127.0.0.1:1 2>&1) || rc=$?
(( rc != 124 )) || fail "waited 60 s for the worker to refuse libs3 over https and exit; it kept running: $out"
(( rc != 0 )) || fail "the worker exited 0 with libs3 over https: $out"
grep -qi "certificate\|insecure_tls_ok" <<<"$out" || fail "libs3 over https was not refused (exit $rc): $out"

# The split: the count stops after its first page (1,000 keys), the delimiter listing is
# refused, the rest of the keys are walked. The seed's directories include "unicode/\xc3\xa9..."
# (its key with a space is taken out: case 1 covers it).
read -r N2 BYTES2 < <(seed_dataset "$SRC_B" big/ 1300 2000)
read -r SIZE _ < <("$S3TOOL" ls "s3://$SRC_B/big/" | grep -F " big/with space/a b.txt")
"$S3TOOL" rm "$SRC_B" "big/with space/a b.txt" || fail "removing the key with a space"
N2=$((N2 - 1)) BYTES2=$((BYTES2 - SIZE))
DS2=v2-big-$RANDOM
publish "$DS2" "s3://$SRC_B/big/" "s3://$DST_B/big/"
wait_until 300 status_is "$DS2" done || { tail -20 "$WORK/v1.log" >&2; fail "$DS2 not done"; }
assert_done_exact "$DS2" "$N2" "$BYTES2" "s3://$SRC_B/big/" "s3://$DST_B/big/"
grep '"level":"warn"' "$WORK/v1.log" | has "split by common prefixes failed.*not available with libs3" ||
    fail "the refused delimiter listing is not logged at warn"
n=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS2}:chunks" n)
bounds=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS2}:chunks" bounds)
(( n == bounds + 1 && n == 7 )) || fail "$DS2 plan: n=$n bounds=$bounds, expected 6 key bounds (5 counted, 1 walked)"
sum=$(chunks_copied "$DS2")
(( sum == N2 )) || fail "$DS2: the chunks copied $sum objects, the dataset has $N2"
# 4. Error pages: for each kind another group, its own topic, a worker behind the proxy.
PAGES=""
for kind in errorpage badgateway; do
    export FERRY_TOPIC_ONBOARD="$TOPIC_PREFIX.$kind.onboard" FERRY_WORKER_GROUP="ferry-test-$RUN_ID-$kind"
    ensure_topic "$FERRY_TOPIC_ONBOARD"
    read -r N3 BYTES3 < <(seed_dataset "$SRC_B" "$kind/" 9 5000) # fewer than 10: no awkward keys
    rm -f "$WORK/port"
    start_faultproxy "$FERRY_S3_ENDPOINT" --kind "$kind" --rate 0.2 --seed 3
    start_worker "v-$kind" -X s3.backend=libs3 -X s3.endpoint="$FAULTPROXY_EP"
    DS3=v2-$kind-$RANDOM
    publish "$DS3" "s3://$SRC_B/$kind/" "s3://$DST_B/$kind/"
    wait_until 240 status_is "$DS3" done ||
        { tail -20 "$WORK/v-$kind.log" >&2; fail "$DS3 not done through $kind (status $(state_field "$DS3" status))"; }
    assert_done_exact "$DS3" "$N3" "$BYTES3" "s3://$SRC_B/$kind/" "s3://$DST_B/$kind/"
    pages=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["injected"])' "$WORK/counts.json")
    (( pages > 0 )) || fail "the proxy sent no $kind answer: the case proved nothing"
    PAGES+=" $kind:$pages"
done
note "ok: $((N - 1)) of $N objects migrated with Signature V2, the key with a space refused by name; $N2 split by keys in $n chunks (delimiter refused); 9 objects each through error pages ($PAGES )"
