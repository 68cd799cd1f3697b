#!/usr/bin/env bash
# Scenario 8 (cross-endpoint): source and target on two different S3 endpoints with
# different credentials: objects are streamed GET -> PUT (multipart above the
# threshold) and verified; the target is read back from the second endpoint.
source "$(dirname "$0")/lib.sh"
[[ -n "${FERRY_S3_ENDPOINT_2:-}" ]] || fail "the stack has no second S3 endpoint (FERRY_STACK_S3_SECOND=1)"

SRC_B=$(bucket xe-src); DST_B=$(bucket xe-dst)
"$S3TOOL" mb "$SRC_B" >/dev/null
read -r n1 b1 < <("$S3TOOL" seed "s3://$SRC_B/data/small/" --count 40 --min-size 0 --max-size 200000 --seed 5)
read -r n2 b2 < <("$S3TOOL" seed "s3://$SRC_B/data/big/" --count 2 --min-size 11000000 --max-size 12000000 --seed 6)
export S3TOOL_DST_ENDPOINT=$FERRY_S3_ENDPOINT_2 S3TOOL_DST_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 \
       S3TOOL_DST_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2
FERRY_S3_ENDPOINT=$FERRY_S3_ENDPOINT_2 AWS_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 \
    AWS_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 "$S3TOOL" mb "$DST_B"
DS=xe-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
# Target credentials come from the environment, never from argv.
FERRY_S3_TARGET_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 FERRY_S3_TARGET_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 \
    start_worker x1 -X s3.target.endpoint="$FERRY_S3_ENDPOINT_2" \
    -X copy.multipart_threshold_mb=5 -X copy.multipart_part_size_mb=5
wait_until 120 status_is "$DS" done || { cat "$WORK/x1.log" >&2; fail "not done"; }
assert_done_exact "$DS" $((n1 + n2)) $((b1 + b2)) "s3://$SRC_B/data/" "s3://$DST_B/copy/"
# The secret is refused on the command line.
out=$("$WORKER" -X s3.target.secret_access_key=nope --dump-config 2>&1) && fail "secret accepted on argv"
grep -q "not on the command line" <<<"$out" || fail "unexpected message: $out"
note "ok: $((n1 + n2)) objects streamed across endpoints and verified"
