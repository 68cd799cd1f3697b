#!/usr/bin/env bash
# Scenario 8 (multipart): objects above copy.multipart_threshold_mb are copied with
# UploadPartCopy and verified (their ETag is a multipart one, so the size is checked).
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket mp-src); DST_B=$(bucket mp-dst)
"$S3TOOL" mb "$SRC_B" >/dev/null
# 3 objects of 11-13 MiB (above a 5 MiB threshold) and a few small ones.
read -r n1 b1 < <("$S3TOOL" seed "s3://$SRC_B/data/big/" --count 3 --min-size 11534336 --max-size 13631488 --seed 3)
read -r n2 b2 < <("$S3TOOL" seed "s3://$SRC_B/data/small/" --count 5 --min-size 0 --max-size 1000 --seed 4)
"$S3TOOL" mb "$DST_B"
DS=mp-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker m1 -X copy.multipart_threshold_mb=5 -X copy.multipart_part_size_mb=5 >/dev/null
wait_until 120 status_is "$DS" done || { cat "$WORK/m1.log" >&2; fail "not done"; }
assert_done_exact "$DS" $((n1 + n2)) $((b1 + b2)) "s3://$SRC_B/data/" "s3://$DST_B/copy/"
note "ok: $n1 multipart + $n2 single-part copies verified"
