#!/usr/bin/env bash
# Scenario 8 (libs3): the opt-in Signature V2 backend (Debian's libs3 2.0) migrates a
# dataset against S3Proxy with V2 authentication; a large one is split with
# fanout.delimiter=/ set, which libs3 cannot list (it garbles non-ASCII common prefixes):
# the split walks the keys instead, says so, and every object is copied once.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket v2-src); DST_B=$(bucket v2-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 60 50000)
"$S3TOOL" mb "$DST_B"
DS=v2-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker v1 -X s3.backend=libs3 -X fanout.min_objects=100 -X fanout.chunk_objects=200 \
    -X fanout.delimiter=/
wait_until 120 status_is "$DS" done || { cat "$WORK/v1.log" >&2; fail "not done"; }
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
# libs3 2.0 does not verify TLS certificates: https is refused unless explicitly allowed.
# The worker refuses at startup and exits by itself; 60 s is a generous bound for that.
rc=0
out=$(FERRY_S3_ENDPOINT=https://127.0.0.1:1 timeout 60 "$WORKER" -X s3.backend=libs3 -X kafka.brokers=127.0.0.1:1 2>&1) || rc=$?
(( rc != 124 )) || fail "waited 60 s for the worker to refuse libs3 over https and exit; it kept running: $out"
(( rc != 0 )) || fail "the worker exited 0 with libs3 over https: $out"
grep -qi "certificate\|insecure_tls_ok" <<<"$out" || fail "libs3 over https was not refused (exit $rc): $out"

# The split: the count stops after its first page (1,000 keys), the delimiter listing is
# refused, the rest of the keys are walked. The seed's directories include "unicode/\xc3\xa9..."
read -r N2 BYTES2 < <(seed_dataset "$SRC_B" big/ 1300 2000)
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
note "ok: $N objects migrated with Signature V2; $N2 split by keys in $n chunks (delimiter refused)"
