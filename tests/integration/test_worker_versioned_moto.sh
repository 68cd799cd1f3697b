#!/usr/bin/env bash
# A versioned source bucket (issue 11: real stores keep versions; moto does, S3Proxy does
# not, so this runs against moto only, whatever FERRY_TEST_S3 says). Every key has
# several versions; three keys have a delete marker as their latest version (deleted,
# older versions kept), one was deleted and written again. The migration copies exactly
# the current versions: each target object's bytes are the latest version's (read back
# with plain GETs, not through ferry), the deleted keys are not copied and not counted
# as failed or vanished, the counts are exact and verification passes.
# 2. A key that gets a delete marker after it was listed (its older versions still there)
#    is counted as vanished -- not failed, and no older version is copied instead -- and
#    the dataset ends done.
export FERRY_TEST_S3=moto
source "$(dirname "$0")/lib.sh"

bucket_pair ver
# (bucket versioning, DELETE and ListObjectVersions through s3_curl: ferry-s3tool has no
# verb for them)
code=$(s3_curl -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/xml' --data-binary \
    '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' \
    "$FERRY_S3_ENDPOINT/$SRC_B?versioning")
[[ $code == 200 ]] || fail "enabling versioning answered $code"
s3_curl "$FERRY_S3_ENDPOINT/$SRC_B?versioning" | has '<Status>Enabled</Status>' || fail "versioning is not enabled on $SRC_B"

put() { "$S3TOOL" put "$SRC_B" "$1" "$2" || fail "PUT $1"; }
del() {
    local c
    c=$(s3_curl -o /dev/null -w '%{http_code}' -X DELETE "$FERRY_S3_ENDPOINT/$SRC_B/$1")
    [[ $c == 204 ]] || fail "DELETE $1 answered $c"
}
# latest body of a key: different sizes per version, so a wrong version shows in the
# byte count as well as in the bytes
body() { printf 'key %s version %d %*s' "$1" "$2" $(( $2 * 37 )) "end"; }
declare -A WANT
N=10 OBJS=0 BYTES=0
for i in $(seq 1 $N); do
    k=data/live/k$i
    for v in 1 2 3; do put "$k" "$(body "$k" $v)"; done
    # a newer version that is smaller than the one before it, for half the keys
    if (( i % 2 )); then put "$k" "$(body "$k" 0)"; WANT[$k]=$(body "$k" 0); else WANT[$k]=$(body "$k" 3); fi
    OBJS=$((OBJS + 1)); BYTES=$((BYTES + ${#WANT[$k]}))
done
for i in 1 2 3; do
    k=data/gone/k$i
    put "$k" "$(body "$k" 1)"; put "$k" "$(body "$k" 2)"
    del "$k"
done
k=data/back/k1   # deleted, then written again: its current version is the last PUT
put "$k" "$(body "$k" 1)"; del "$k"; put "$k" "$(body "$k" 2)"
WANT[$k]=$(body "$k" 2); OBJS=$((OBJS + 1)); BYTES=$((BYTES + ${#WANT[$k]}))

# The source is what the test says: versions and delete markers as written.
s3_curl "$FERRY_S3_ENDPOINT/$SRC_B?versions&prefix=data/" >"$WORK/versions.xml"
nver=$(grep -o '<Version>' "$WORK/versions.xml" | wc -l)
ndm=$(grep -o '<DeleteMarker>' "$WORK/versions.xml" | wc -l)
(( nver == N * 3 + N / 2 + N % 2 + 3 * 2 + 2 && ndm == 4 )) \
    || fail "source holds $nver versions and $ndm delete markers: $(head -c 600 "$WORK/versions.xml")"
read -r lobjs lbytes < <("$S3TOOL" count "s3://$SRC_B/data/")
(( lobjs == OBJS && lbytes == BYTES )) || fail "source lists $lobjs objects / $lbytes bytes, expected $OBJS / $BYTES"

DS=ver-$RANDOM$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker v1 -X copy.page_size=4
V1=$LAST_PID
wait_until 90 status_is "$DS" done \
    || { tail -20 "$WORK/v1.log" >&2; fail "not done (status $(state_field "$DS" status), error $(state_field "$DS" last_error))"; }
assert_done_exact "$DS" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
for f in "objects_total $OBJS" "objects_copied $OBJS" "objects_failed 0" "objects_vanished 0"; do
    set -- $f
    [[ "$(state_field "$DS" "$1")" == "$2" ]] || fail "state $1 is $(state_field "$DS" "$1"), expected $2"
done
[[ -n "$(state_field "$DS" verify)" ]] || fail "no verification recorded"
# Each target object holds exactly its key's latest version, read with a plain GET.
for k in "${!WANT[@]}"; do
    got=$(s3_curl "$FERRY_S3_ENDPOINT/$DST_B/copy/${k#data/}")
    [[ "$got" == "${WANT[$k]}" ]] || fail "copy/${k#data/} holds '${got:0:60}...', expected its latest version '${WANT[$k]:0:60}...'"
done
# The keys whose latest version is a delete marker are not at the target.
for i in 1 2 3; do
    c=$(s3_curl -o /dev/null -w '%{http_code}' -I "$FERRY_S3_ENDPOINT/$DST_B/copy/gone/k$i")
    [[ $c == 404 ]] || fail "copy/gone/k$i: HEAD answered $c; a deleted key was copied"
done
read -r tobjs tbytes < <("$S3TOOL" count "s3://$DST_B/copy/")
(( tobjs == OBJS && tbytes == BYTES )) || fail "target holds $tobjs objects / $tbytes bytes, expected $OBJS / $BYTES"
[[ $(count_messages "$FERRY_TOPIC_DLQ") -eq 0 ]] || fail "dead-lettered: $(dlq_classes)"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "1: versioned source ($nver versions, $ndm delete markers): $OBJS current versions copied and verified ($(state_field "$DS" verify)), 3 deleted keys not copied"

# ---- 2. a delete marker placed after the listing ---------------------------------------
kill -TERM "$V1"; wait "$V1" 2>/dev/null || true   # v2 alone gets the next event (and logs it)
M=30
for i in $(seq 1 $M); do put "late/k$(printf %02d "$i")" "late object $i"; done
LATE=late/zz-last   # listed last, so copied last
put "$LATE" "older version"; put "$LATE" "the version that gets deleted"
DS2=ver2-$RANDOM$RANDOM
publish "$DS2" "s3://$SRC_B/late/" "s3://$DST_B/late/"
# One page (so the last key is listed before the first copy) copied at 4 requests/s: the
# last key's copy comes ~7 s after the first.
start_worker v2 -X copy.page_size=1000 -X copy.max_requests_per_second=4 -X copy.max_in_flight=1 \
    -X log.level=debug
wait_until 60 bash -c "grep -q '\"msg\":\"copied ' '$WORK/v2.log'" || { tail -20 "$WORK/v2.log" >&2; fail "the copy of $DS2 did not start"; }
grep -q "\"msg\":\"copied $LATE " "$WORK/v2.log" && fail "$LATE was copied before the test could delete it: too fast"
del "$LATE"
wait_until 60 status_is "$DS2" done \
    || { tail -20 "$WORK/v2.log" >&2; fail "$DS2 not done (status $(state_field "$DS2" status), error $(state_field "$DS2" last_error))"; }
for f in "objects_done $M" "objects_copied $M" "objects_vanished 1" "objects_failed 0" "objects_total $((M + 1))"; do
    set -- $f
    [[ "$(state_field "$DS2" "$1")" == "$2" ]] || fail "$DS2: state $1 is $(state_field "$DS2" "$1"), expected $2"
done
c=$(s3_curl -o /dev/null -w '%{http_code}' -I "$FERRY_S3_ENDPOINT/$DST_B/late/zz-last")
[[ $c == 404 ]] || fail "late/zz-last: HEAD answered $c; an older version of a deleted key was copied"
read -r tobjs _ < <("$S3TOOL" count "s3://$DST_B/late/")
(( tobjs == M )) || fail "target late/ holds $tobjs objects, expected $M"
[[ $(count_messages "$FERRY_TOPIC_DLQ") -eq 0 ]] || fail "dead-lettered: $(dlq_classes)"
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "2: a delete marker placed after the listing: counted vanished, nothing older copied, $M copied, done"
