#!/usr/bin/env bash
# Fan-out by common prefixes (fanout.delimiter=/): the splitter finds the rest of the
# plan from a delimiter listing of the dataset's "directories" -- one LIST page here
# instead of one per 1,000 keys -- after the bounds its count already found; it follows a
# chain of single directories (data/ holds only 2026/) down to where the dataset fans out.
# Every object is still copied and verified once, the chunks cover the key space exactly,
# the dataset is done with the exact totals and announced once.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket fp-src); DST_B=$(bucket fp-dst)
# 17 dirNN/ directories plus 4 awkward ones (with space/, unicode/, signs/, deep/...),
# all under data/2026/: nothing else under data/.
read -r N BYTES < <(seed_dataset "$SRC_B" data/2026/ 3000 2000)
"$S3TOOL" mb "$DST_B"
DS=fp-$RANDOM
ARGS=(-X fanout.min_objects=1000 -X fanout.chunk_objects=400 -X fanout.delimiter=/
    -X copy.max_requests_per_second=200)
for w in p1 p2 p3; do start_worker "$w" "${ARGS[@]}"; done
stable() { grep -q 'assigned [0-9]* partition' "$WORK/$1.log"; }
for w in p1 p2 p3; do wait_until 60 stable "$w" || fail "$w never joined"; done
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
wait_until 180 status_is "$DS" done || { tail -5 "$WORK"/p*.log >&2; fail "not done"; }
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"

grep -h '"msg":"split by [0-9]* common prefixes under \\"data/2026/\\": [0-9]* bounds"' \
    "$WORK"/p*.log | has . || fail "no split by common prefixes under data/2026/ logged"
n=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS}:chunks" n)
bounds=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS}:chunks" bounds)
(( n == bounds + 1 )) || fail "plan: n=$n bounds=$bounds"
# The count stopped after 2 pages (2,000 keys > 1,000): 5 key bounds, every 400th key;
# the bounds after them are directories, in increasing order.
keyb=0; dirb=0; prev=""
for ((i = 0; i < bounds; i++)); do
    b=$(redis-cli -u "$FERRY_REDIS_URL" --raw HGET "ferry:{$DS}:chunks" "end:$i")
    [[ -z "$prev" || "$b" > "$prev" ]] || fail "bound $i ($b) does not follow bound $((i - 1)) ($prev)"
    prev=$b
    if [[ "$b" == */ ]]; then
        (( keyb == 5 )) || fail "directory bound $i ($b) before the 5 key bounds"
        dirb=$((dirb + 1))
    else
        (( dirb == 0 )) || fail "key bound $i ($b) after a directory bound"
        keyb=$((keyb + 1))
    fi
done
(( keyb == 5 )) || fail "expected the count's 5 key bounds first, got $keyb"
(( dirb >= 5 )) || fail "expected the directories after the count's last bound as bounds, got $dirb"
for ((i = 0; i < n; i++)); do
    [[ "$(state_field "$DS#$i" status)" == done ]] || fail "chunk $i: $(state_field "$DS#$i" status)"
done
# The chunks' counts add up to the dataset: none overlaps another, none left a key out.
sum=$(chunks_copied "$DS")
(( sum == N )) || fail "the chunks copied $sum objects, the dataset has $N"
wait_committed 60
[[ $(count_messages "$FERRY_TOPIC_MIGRATED") -eq 1 ]] || fail "expected one DatasetMigrated, got $(count_messages "$FERRY_TOPIC_MIGRATED")"
note "ok: $N objects in $n chunks ($keyb key bounds, $dirb directory bounds)"
