#!/usr/bin/env bash
# Fan-out: a dataset above fanout.min_objects is split into key-range chunk events that
# several workers copy at once; the last chunk to finish marks the dataset done with the
# exact totals and it is announced exactly once.
# The split is decided from the first pages and made while listing (issue 12): the count
# stops once it passes fanout.min_objects (2 of 3 pages here), and every chunk but the
# last is published before the listing ends (chunk_count -1, "still being listed").
source "$(dirname "$0")/lib.sh"

# A chunk topic of 7 partitions for the 8 chunks: one must get 2, every other one 1 (see
# the end).
export FERRY_TOPIC_CHUNKS="$TOPIC_PREFIX.chunk7"
"$BIN/tests/tools/ferry-topictool" create "$FERRY_TOPIC_CHUNKS" 7 || fail "creating $FERRY_TOPIC_CHUNKS"
SRC_B=$(bucket fo-src); DST_B=$(bucket fo-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 3000 2000)
"$S3TOOL" mb "$DST_B"
# A name for which hashing the chunk keys "<DS>#0".."<DS>#7" (librdkafka's default
# partitioner: CRC-32 modulo the partitions) would not spread them (3 in 100 names would).
DS=$(python3 -c 'import random, zlib
while True:
    ds = "fo-%d" % random.randrange(10**6)
    c = [0] * 7
    for i in range(8): c[zlib.crc32(("%s#%d" % (ds, i)).encode()) % 7] += 1
    if max(c) - min(c) > 1: print(ds); break')
ARGS=(-X fanout.min_objects=1000 -X fanout.chunk_objects=400 -X copy.max_requests_per_second=200)
for w in f1 f2 f3; do start_worker "$w" "${ARGS[@]}"; done
stable() { grep -q 'assigned [0-9]* partition' "$WORK/$1.log"; }
for w in f1 f2 f3; do wait_until 60 stable "$w" || fail "$w never joined"; done
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
wait_until 180 status_is "$DS" done || { tail -5 "$WORK"/f*.log >&2; fail "not done"; }
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"

n=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS}:chunks" n)
(( n == N / 400 + 1 )) || fail "expected $((N / 400 + 1)) chunks, plan says $n"
[[ $(redis-cli -u "$FERRY_REDIS_URL" --raw SCARD "ferry:{$DS}:chunks_done") -eq $n ]] || fail "not every chunk recorded done"
for ((i = 0; i < n; i++)); do
    [[ "$(state_field "$DS#$i" status)" == done ]] || fail "chunk $i: $(state_field "$DS#$i" status)"
done
grep -h '"msg":"at least 2000 objects to migrate: enough to split it"' "$WORK"/f*.log | has . ||
    fail "the count did not stop after passing fanout.min_objects=1000"
grep -h '"msg":"splitting into chunks of 400 objects while listing"' "$WORK"/f*.log | has . ||
    fail "no split while listing logged"
# Every chunk but the last went out before the listing ended, the last one after it.
open_chunks=$(grep -ho '"msg":"\(copying\|resuming\) chunk [0-9]* (the dataset is still being listed)' "$WORK"/f*.log |
    grep -o 'chunk [0-9]*' | sort -u | wc -l)
(( open_chunks == n - 1 )) || fail "$open_chunks chunks published while listing, expected $((n - 1))"
grep -hq "\"msg\":\"\(copying\|resuming\) chunk $n of $n\"" "$WORK"/f*.log ||
    fail "the last chunk ($n) was not published with the final count"
workers=$(grep -l '"msg":"copying chunk' "$WORK"/f*.log | wc -l)
(( workers >= 2 )) || fail "only $workers worker(s) copied chunks: no fan-out"
# The chunks fill the chunk topic's partitions evenly (consecutive chunks on consecutive
# partitions), so the workers holding them get as many each: every partition holds
# floor(n/P) or ceil(n/P) of the n chunk events.
P=$(kcat -b "$FERRY_KAFKA_BROKERS" -L -t "$FERRY_TOPIC_CHUNKS" | grep -c 'partition [0-9]*,')
spread=$(kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_CHUNKS" -e -q -f '%p\n' | sort | uniq -c |
    awk -v P="$P" '{c[NR] = $1; t += $1} END {lo = NR < P ? 0 : 1e9; hi = 0
        for (i = 1; i <= NR; i++) { if (c[i] < lo) lo = c[i]; if (c[i] > hi) hi = c[i] }
        printf "%d %d %d", t, lo, hi}')
read -r total lo hi <<<"$spread"
(( total == n )) || fail "$total chunk events on the topic, expected $n"
(( hi - lo <= 1 )) || fail "$n chunks on $P partitions: from $lo to $hi a partition, not spread evenly"
# Committed past the event and every chunk: the DatasetMigrated was produced before the
# last offset was stored, and no redelivery can add another.
wait_committed 60
[[ $(count_messages "$FERRY_TOPIC_MIGRATED") -eq 1 ]] || fail "expected one DatasetMigrated, got $(count_messages "$FERRY_TOPIC_MIGRATED")"
note "ok: $N objects in $n chunks on $P partitions ($lo-$hi each) copied by $workers workers"
