#!/usr/bin/env bash
# Scenario 7: a missing source bucket, wrong credentials and every kind of poison pill
# each end in the DLQ at once with the right error class, the original key and value
# byte-identical, and the partition keeps flowing: a good event behind them migrates.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket dl-src); DST_B=$(bucket dl-dst)
seed_dataset "$SRC_B" data/ 5 >/dev/null
"$S3TOOL" mb "$DST_B"
T=$FERRY_TOPIC_ONBOARD

# Everything on partition 0, in this order; expected class per message.
mk() { "$EVENTTOOL" "$@"; }
i=0; expected=()
add() { # CLASS-REGEX GENERATOR-ARGS...
    local cls=$1; shift
    mk "$@" > "$WORK/pill-$i.bin" || fail "eventtool $*"
    produce_file "$T" 0 "pill-$i" "$WORK/pill-$i.bin"
    expected+=("$cls"); i=$((i + 1))
}
add 's3-not-found' onboard --dataset dl-missing --source "s3://no-such-bucket-$$x/data/" --target "s3://$DST_B/m/"
add 'decode|unknown-schema' garbage 200
add 'unknown-schema' unknown-schema
add 'unknown-schema' migrated
add 'invalid-spec' onboard --dataset "" --source "" --target ""
add 'invalid-spec' onboard --dataset "../x" --source "s3://$SRC_B/data/" --target "s3://$DST_B/x/"
add 'invalid-spec' onboard --dataset "$(head -c 10000 /dev/zero | tr '\0' a)" --source "s3://$SRC_B/data/" --target "s3://$DST_B/x/"
add 'decode' onboard --dataset "aaaa" --patch-dataset 61006262 --source "s3://$SRC_B/data/" --target "s3://$DST_B/x/"
add 'invalid-spec' onboard --dataset "aaaa" --patch-dataset 610a0d62 --source "s3://$SRC_B/data/" --target "s3://$DST_B/x/"
add 'validation' onboard --dataset dl-overlap --source "s3://$SRC_B/data/" --target "s3://$SRC_B/data/copy/"
# ... and a good one behind them.
"$EVENTTOOL" onboard --dataset dl-good --source "s3://$SRC_B/data/" --target "s3://$DST_B/good/" > "$WORK/good.bin"
produce_file "$T" 0 dl-good "$WORK/good.bin"

start_worker w1 >/dev/null
wait_until 90 status_is dl-good done || { cat "$WORK/w1.log" >&2; fail "good event behind the pills did not migrate"; }
wait_until 30 bash -c "[[ \$(kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f 'x\n' | wc -l) -ge $i ]]" \
    || fail "expected $i DLQ records, got $(count_messages "$FERRY_TOPIC_DLQ")"

dlq_classes > "$WORK/dlq.txt"
[[ $(wc -l < "$WORK/dlq.txt") -eq $i ]] || fail "expected exactly $i DLQ records: $(cat "$WORK/dlq.txt")"
for ((k = 0; k < i; k++)); do
    # DLQ partition of record k: the worker keeps the message key, so find it by key.
    line=$(kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_DLQ" -e -q -f '%k %p %o %h\n' | grep "^pill-$k ")
    [[ -n "$line" ]] || fail "pill-$k not dead-lettered"
    read -r _ p o _ <<<"$line"
    cls=$(sed -E 's/.*ferry-error-class=([^,]*).*/\1/' <<<"$line")
    [[ "$cls" =~ ^(${expected[$k]})$ ]] || fail "pill-$k: class '$cls', expected ${expected[$k]}"
    grep -q 'ferry-error-message=[^,]' <<<"$line" || fail "pill-$k: no error message"
    for h in ferry-original-topic="$T" ferry-original-partition=0 ferry-attempts= ferry-failed-at= \
             ferry-worker=w1 ferry-replay-count=0 kafka_dlt-original-topic="$T" kafka_dlt-exception-message=; do
        grep -qF "$h" <<<"$line" || fail "pill-$k: header $h missing: $line"
    done
    kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_DLQ" -p "$p" -o "$o" -c 1 -e -q -f '%s' > "$WORK/out-$k.bin"
    cmp -s "$WORK/pill-$k.bin" "$WORK/out-$k.bin" || fail "pill-$k: DLQ value is not byte-identical"
    note "pill-$k -> $cls"
done
[[ "$(state_field dl-missing status)" == failed ]] || fail "dl-missing: status $(state_field dl-missing status)"
grep -q 'validation: source' <<<"$(state_field dl-missing last_error)" || fail "dl-missing: last_error does not say which check failed"
# The target's write probe goes out together with the source's listing: when the
# listing fails, the probe must not stay behind in the target.
read -r left _ < <("$S3TOOL" count "s3://$DST_B/m/") || fail "counting s3://$DST_B/m/"
[[ "$left" == 0 ]] || fail "dl-missing: the write probe stayed in the target: $("$S3TOOL" ls "s3://$DST_B/m/")"

# Wrong credentials: a worker whose S3 secret is wrong dead-letters with s3-auth. Not
# against moto: it accepts any credentials (scripts/stack), so there is nothing to refuse.
if [[ $FERRY_TEST_S3 == moto ]]; then
    note "ok: $i pills dead-lettered with the right classes; good event migrated (moto: no credential check to test)"
    exit 0
fi
export FERRY_TOPIC_ONBOARD="$TOPIC_PREFIX.creds.onboard" FERRY_WORKER_GROUP="$FERRY_WORKER_GROUP-creds"
publish dl-creds "s3://$SRC_B/data/" "s3://$DST_B/creds/"
AWS_SECRET_ACCESS_KEY=wrong-secret start_worker w2 >/dev/null
wait_until 60 bash -c "kcat -b '$FERRY_KAFKA_BROKERS' -C -t '$FERRY_TOPIC_DLQ' -e -q -f '%k %h\n' | grep -q '^dl-creds .*ferry-error-class=s3-auth'" \
    || { cat "$WORK/w2.log" >&2; fail "wrong credentials were not dead-lettered as s3-auth"; }
grep -q "wrong-secret" "$WORK"/*.log && fail "the secret appeared in a log"
note "ok: $i pills dead-lettered with the right classes; good event migrated; wrong credentials -> s3-auth"
