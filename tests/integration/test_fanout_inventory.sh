#!/usr/bin/env bash
# Fan-out from an S3 Inventory (publish --inventory): the worker reads the inventory's
# manifest and gzip CSV files -- a few GETs -- instead of counting the dataset by listing
# it; the inventory's count decides the split and its keys give every chunk bound. One
# that lists too few of the dataset's objects leaves the decision to the count. It is a
# hint for where to cut, never the list of what to copy: objects written after it was
# taken are copied too, rows of other buckets, other prefixes, old versions and delete
# markers are ignored, and an inventory that cannot be used (missing, not CSV) is logged
# at warn and the dataset is split by listing. Every case ends with every object copied
# and verified once, chunk counts adding up to the dataset, and one announcement.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket fi-src); DST_B=$(bucket fi-dst); INV_B=$(bucket fi-inv)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 3000 2000)
"$S3TOOL" mb "$DST_B"
"$S3TOOL" mb "$INV_B"

# The inventory, as S3 writes it: the source bucket's objects (with a VersionId column,
# so old versions and delete markers are rows too), in two gzip files, a manifest naming
# them with their MD5. Keys are URL-encoded, "+" for a space.
"$S3TOOL" ls "s3://$SRC_B/data/" > "$WORK/listing" || fail "listing the source"
[[ $(wc -l < "$WORK/listing") -eq $N ]] || fail "listed $(wc -l < "$WORK/listing") of $N objects"
python3 - "$WORK" "$SRC_B" <<'EOF' || fail "writing the inventory"
import gzip, hashlib, json, sys, urllib.parse
work, bucket = sys.argv[1], sys.argv[2]
rows = []
for line in open(f"{work}/listing", encoding="utf-8"):
    size, key = line.rstrip("\n").split(" ", 1)
    rows.append((bucket, key, "v1", "true", "false", size))
# not the dataset's: another prefix, another bucket, an old version, a delete marker
rows += [(bucket, "other/x.bin", "v1", "true", "false", "1"),
         ("someone-else", "data/dir00/zzz", "v1", "true", "false", "1"),
         (bucket, "data/dir03/old-version", "v0", "false", "false", "1"),
         (bucket, "data/dir07/deleted", "v2", "true", "true", "")]
rows.sort(key=lambda r: r[1][::-1])  # inventories are in no particular order
def line(r):
    enc = urllib.parse.quote_plus(r[1], safe="/")
    return ",".join('"%s"' % f for f in (r[0], enc, r[2], r[3], r[4], r[5])) + "\n"
files = []
half = len(rows) // 2
for i, part in enumerate((rows[:half], rows[half:])):
    data = gzip.compress("".join(line(r) for r in part).encode())
    name = f"inv/{bucket}/data/part-{i}.csv.gz"
    open(f"{work}/part-{i}.csv.gz", "wb").write(data)
    files.append({"key": name, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
manifest = {"sourceBucket": bucket, "destinationBucket": "arn:aws:s3:::inventory",
            "version": "2016-11-30", "creationTimestamp": "1764806400000",
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size",
            "files": files}
json.dump(manifest, open(f"{work}/manifest.json", "w"))
json.dump(dict(manifest, fileFormat="Parquet"), open(f"{work}/manifest-parquet.json", "w"))
# a stale one: 100 of the dataset's objects (fewer than fanout.min_objects)
mine = [r for r in rows if r[0] == bucket and r[1].startswith("data/") and r[3:5] == ("true", "false")]
data = gzip.compress("".join(line(r) for r in mine[:100]).encode())
open(f"{work}/part-small.csv.gz", "wb").write(data)
json.dump(dict(manifest, files=[{"key": f"inv/{bucket}/data/part-small.csv.gz"}]),
          open(f"{work}/manifest-small.json", "w"))
EOF
for i in 0 1 small; do
    "$S3TOOL" put "$INV_B" "inv/$SRC_B/data/part-$i.csv.gz" "@$WORK/part-$i.csv.gz" || fail "put part $i"
done
"$S3TOOL" put "$INV_B" "inv/$SRC_B/small/manifest.json" "@$WORK/manifest-small.json" || fail "put manifest"

"$S3TOOL" put "$INV_B" "inv/$SRC_B/manifest.json" "@$WORK/manifest.json" || fail "put manifest"
"$S3TOOL" put "$INV_B" "inv/$SRC_B/parquet/manifest.json" "@$WORK/manifest-parquet.json" || fail "put manifest"

# Written after the inventory was taken: in the middle of the key space and at its end.
LATE=0
for k in dir11/late-a dir11/late-b dir14/late-c zz-late/1 zz-late/2; do
    "$S3TOOL" put "$SRC_B" "data/$k" "late object $k" || fail "put data/$k"
    LATE=$((LATE + 1)); BYTES=$((BYTES + ${#k} + 12))
done
N=$((N + LATE))

# One migration at a time per worker: case 1b needs the thread that split case 1.
ARGS=(-X fanout.min_objects=500 -X fanout.chunk_objects=150 -X worker.concurrency=1)
for w in i1 i2; do start_worker "$w" "${ARGS[@]}"; done
stable() { grep -q 'assigned [0-9]* partition' "$WORK/$1.log"; }
for w in i1 i2; do wait_until 60 stable "$w" || fail "$w never joined"; done

# check_split DATASET TARGET: done exactly, the plan's bounds increasing and every chunk
# done, their counts adding up to the dataset, one announcement so far per dataset.
check_split() {
    local ds=$1 dst=$2 n bounds prev="" b sum
    wait_until 240 status_is "$ds" done || { tail -5 "$WORK"/i*.log >&2; fail "$ds not done"; }
    assert_done_exact "$ds" "$N" "$BYTES" "s3://$SRC_B/data/" "$dst"
    n=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$ds}:chunks" n)
    bounds=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$ds}:chunks" bounds)
    (( n == bounds + 1 && n > 1 )) || fail "$ds plan: n=$n bounds=$bounds"
    for ((i = 0; i < bounds; i++)); do
        b=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$ds}:chunks" "end:$i")
        [[ -z "$prev" || "$b" > "$prev" ]] || fail "$ds bound $i ($b) does not follow $prev"
        prev=$b
    done
    for ((i = 0; i < n; i++)); do
        [[ "$(state_field "$ds#$i" status)" == done ]] || fail "$ds chunk $i: $(state_field "$ds#$i" status)"
    done
    sum=$(chunks_copied "$ds")
    (( sum == N )) || fail "$ds: the chunks copied $sum objects, the dataset has $N"
    SPLIT_BOUNDS=$bounds
}

# 1. A good inventory: its 3,000 objects of the dataset (more than 500) decide the split
# without a count, and every 150th of its keys is a bound.
DS=fi-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/" --inventory "s3://$INV_B/inv/$SRC_B/manifest.json"
check_split "$DS" "s3://$DST_B/copy/"
INV_N=$((N - LATE)); WANT=$(( (INV_N + 149) / 150 - 1 ))
grep -h "\"msg\":\"inventory s3://$INV_B/inv/$SRC_B/manifest.json: $INV_N objects of the dataset in 2 files: $WANT chunk bounds\"" \
    "$WORK"/i*.log | has . || fail "no split from the inventory logged ($INV_N objects, $WANT bounds expected)"
grep -h "\"dataset\":\"$DS\".*the inventory lists $INV_N objects of the dataset: enough to split it" "$WORK"/i*.log | has . ||
    fail "the split was not decided from the inventory"
grep -h "\"dataset\":\"$DS\".*objects to migrate" "$WORK"/i*.log | has . && fail "$DS was counted by listing"
(( SPLIT_BOUNDS == WANT )) || fail "plan has $SPLIT_BOUNDS bounds, expected $WANT from the inventory"
# the bounds are the inventory's keys in order: the second is its 300th key
key=$(sed -n 300p "$WORK/listing" | cut -d' ' -f2-)
redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS}:chunks" end:1 | has -xF "$key" ||
    fail "bound 1 is $(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS}:chunks" end:1), not the inventory's key $key"
grep -h "inventory unusable\|lists none" "$WORK"/i*.log | has . && fail "a warning about a good inventory"

# 1b. The next dataset without an inventory, on the thread that split case 1 (same
# onboarding partition, one migration per worker): counted and split by walking the keys,
# all of them -- the first dataset's inventory plan must not cut this one's split short
# after the count's bounds.
P_ON=$(kcat -b "$FERRY_KAFKA_BROKERS" -L -t "$FERRY_TOPIC_ONBOARD" | grep -c 'partition [0-9]*,')
DS1B=$(python3 -c 'import random, sys, zlib
ds, parts = sys.argv[1], int(sys.argv[2])
want = zlib.crc32(ds.encode()) % parts
while True:
    name = "fi-next-%d" % random.randrange(10**6)
    if zlib.crc32(name.encode()) % parts == want: print(name); break' "$DS" "$P_ON")
publish "$DS1B" "s3://$SRC_B/data/" "s3://$DST_B/copy1b/"
check_split "$DS1B" "s3://$DST_B/copy1b/"
(( SPLIT_BOUNDS == N / 150 )) ||
    fail "$DS1B plan has $SPLIT_BOUNDS bounds, expected every 150th of $N keys (6 counted, the rest walked)"

# 2. Inventories that cannot be used: the split lists the dataset instead, and says why.
DS2=fi-missing-$RANDOM
publish "$DS2" "s3://$SRC_B/data/" "s3://$DST_B/copy2/" --inventory "s3://$INV_B/inv/nothing-here/manifest.json"
check_split "$DS2" "s3://$DST_B/copy2/"
[[ $(grep -h '"level":"warn".*inventory unusable.*counting by listing' "$WORK"/i*.log | grep -c "$DS2") -eq 1 ]] ||
    fail "expected one warning for a missing manifest (read once, before the count)"
DS3=fi-parquet-$RANDOM
publish "$DS3" "s3://$SRC_B/data/" "s3://$DST_B/copy3/" --inventory "s3://$INV_B/inv/$SRC_B/parquet/manifest.json"
check_split "$DS3" "s3://$DST_B/copy3/"
grep -h '"level":"warn".*inventory unusable.*only CSV inventories are read' "$WORK"/i*.log | has "$DS3" ||
    fail "no warning for a Parquet manifest"

# 4. A stale inventory (100 of the dataset's objects): the count decides, and the split
# walks the keys (the inventory is not read again).
DS4=fi-stale-$RANDOM
publish "$DS4" "s3://$SRC_B/data/" "s3://$DST_B/copy4/" --inventory "s3://$INV_B/inv/$SRC_B/small/manifest.json"
check_split "$DS4" "s3://$DST_B/copy4/"
grep -h "\"dataset\":\"$DS4\".*the inventory lists 100 objects of the dataset, not more than fanout.min_objects: counting by listing" \
    "$WORK"/i*.log | has . || fail "the stale inventory's count is not logged"
grep -h "\"dataset\":\"$DS4\".*at least [0-9]* objects to migrate" "$WORK"/i*.log | has . || fail "$DS4 was not counted"
[[ $(grep -h "\"dataset\":\"$DS4\".*\"msg\":\"inventory s3://" "$WORK"/i*.log | grep -c .) -eq 1 ]] ||
    fail "the stale inventory was read more than once"
(( SPLIT_BOUNDS == N / 150 )) || fail "$DS4 plan has $SPLIT_BOUNDS bounds, expected every 150th of $N keys"

wait_committed 60
[[ $(count_messages "$FERRY_TOPIC_MIGRATED") -eq 5 ]] || fail "expected 5 DatasetMigrated, got $(count_messages "$FERRY_TOPIC_MIGRATED")"
note "ok: $N objects ($LATE not in the inventory), $WANT bounds from the inventory without a count; the next dataset on that thread split by keys; missing, Parquet and stale inventories fell back to listing"
