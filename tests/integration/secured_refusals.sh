#!/usr/bin/env bash
# Secured stack only (FERRY_STACK_SECURE=1, label `secured`): every way a secured
# connection can be misconfigured ends in a clear error that names the service and the
# cause, with nothing lost (issue 14, docs/security.md):
#   Kafka  wrong SASL password, a broker certificate from another CA -> exit 2, no event
#          produced; a SASL password on argv is refused
#   S3     a certificate from another CA, for another host name, expired (real TLS servers:
#          openssl s_server with the stack's bad certificates) -> the event is dead-lettered
#          (class s3-network) with the certificate problem in its error
#   Redis  an ACL user without a command ferry needs -> the worker refuses to start
#          (exit 2) naming the command; the event waits and a worker with the right user
#          migrates it
source "$(dirname "$0")/lib.sh"

if [[ "${FERRY_STACK_SECURE:-0}" != 1 ]]; then
    if [[ "${CI:-}" == true ]]; then fail "FERRY_STACK_SECURE not set but CI=true"; fi
    echo "SKIP: needs the secured stack (FERRY_STACK_SECURE=1 scripts/stack up)" >&2; exit 77
fi
TLS=${FERRY_STACK_TLS_DIR:?}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
onboard_count() { count_messages "$FERRY_TOPIC_ONBOARD"; }

# --- Kafka: wrong SASL password --------------------------------------------------------
WRONG="wrong-sasl-$RANDOM-canary"
echo "$WRONG" > "$WORK/wrong-pw"
rc=0
out=$(FERRY_KAFKA_SASL_PASSWORD_FILE="$WORK/wrong-pw" timeout 90 "$PRODUCER" publish --dataset "neg-$RANDOM" \
    --source "s3://$(bucket src)/a/" --target "s3://$(bucket dst)/b/" 2>&1) || rc=$?
(( rc == 2 )) || fail "publish with a wrong SASL password: exit $rc, want 2: $out"
grep -q 'kafka: SASL authentication failed' <<<"$out" || fail "no clear SASL error: $out"
grep -q "$WRONG" <<<"$out" && fail "the wrong password appeared in the output"
rc=0
FERRY_KAFKA_SASL_PASSWORD_FILE="$WORK/wrong-pw" timeout 90 "$WORKER" run >"$WORK/w-sasl.out" 2>"$WORK/w-sasl.log" || rc=$?
(( rc == 2 )) || fail "worker with a wrong SASL password: exit $rc, want 2"
grep -q 'kafka: SASL authentication failed' "$WORK/w-sasl.log" || fail "worker: no clear SASL error"
grep -q "$WRONG" "$WORK/w-sasl.log" && fail "worker: the wrong password appeared in its log"
note "ok: wrong SASL password -> exit 2, 'kafka: SASL authentication failed'"

# --- Kafka: the broker's certificate does not chain to the CA the client trusts -------
rc=0
out=$(FERRY_KAFKA_SSL_CA_LOCATION="$TLS/other-ca.pem" timeout 90 "$PRODUCER" publish --dataset "neg-$RANDOM" \
    --source "s3://$(bucket src)/a/" --target "s3://$(bucket dst)/b/" 2>&1) || rc=$?
(( rc == 2 )) || fail "publish trusting another CA: exit $rc, want 2: $out"
grep -q 'kafka: TLS handshake with the broker failed.*certificate verify failed' <<<"$out" \
    || fail "no clear TLS error: $out"
[[ $(onboard_count) -eq 0 ]] || fail "an event was produced although Kafka refused the client"

# A SASL password on argv would show in ps and /proc/PID/cmdline: refused.
rc=0
out=$("$PRODUCER" publish -X "sasl.password=$WRONG" --dataset "neg-$RANDOM" \
    --source "s3://$(bucket src)/a/" --target "s3://$(bucket dst)/b/" 2>&1) || rc=$?
(( rc == 2 )) || fail "-X sasl.password on argv: exit $rc, want 2: $out"
grep -q 'sasl.password is a secret' <<<"$out" || fail "no clear refusal of -X sasl.password: $out"
note "ok: another CA -> exit 2, 'certificate verify failed'; -X sasl.password refused; no event produced"

# --- S3: bad server certificates --------------------------------------------------------
# One real TLS server per bad certificate; the worker's S3 endpoint points at it. Listing
# the source fails verification, which no retry fixes: the event goes to the DLQ.
dlq_has() { # DATASET CLASS
    kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_DLQ" -e -q -f '%k %h\n' 2>/dev/null \
        | has "^$1 .*ferry-error-class=$2"
}
s3_case() { # CERT-NAME EXPECTED-CURL-MESSAGE
    local cert=$1 want=$2 port ds
    port=$(free_port)
    openssl s_server -accept "127.0.0.1:$port" -cert "$TLS/$cert.pem" -key "$TLS/$cert.key" \
        -www -quiet >"$WORK/s_server-$cert.log" 2>&1 &
    PIDS+=($!)
    local sp=$!
    wait_until 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || fail "s_server ($cert) did not listen"
    ds="neg-$cert-$RANDOM"
    FERRY_S3_ENDPOINT="https://127.0.0.1:$port" start_worker "s3-$cert"
    local wp=$LAST_PID
    publish "$ds" "s3://$(bucket src)/a/" "s3://$(bucket dst)/b/"
    wait_until 120 dlq_has "$ds" s3-network || { cat "$WORK/s3-$cert.log" >&2; fail "$cert: event not dead-lettered as s3-network"; }
    grep -q "$want" "$WORK/s3-$cert.log" || { cat "$WORK/s3-$cert.log" >&2; fail "$cert: the log does not say '$want'"; }
    kill -TERM "$wp"; wait "$wp" || fail "$cert: worker exited non-zero on SIGTERM"
    kill -TERM "$sp" 2>/dev/null || true
    note "ok: S3 $cert -> dead-lettered (s3-network): $want"
}
s3_case other-ca-server 'unable to get local issuer certificate'
s3_case wrong-host "no alternative certificate subject name matches target host name '127.0.0.1'"
s3_case expired 'certificate has expired'

# --- Redis: an ACL user without a command ferry needs -----------------------------------
admin() {
    REDISCLI_AUTH=$(<"$FERRY_STACK_REDIS_ADMIN_PASSWORD_FILE") redis-cli --tls --cacert "$FERRY_STACK_CA_FILE" \
        -h 127.0.0.1 -p "$FERRY_STACK_REDIS_TLS_PORT" "$@"
}
NEG_USER="ferry-neg-$RANDOM"
NEG_PW="neg-$RANDOM-$RANDOM-redis"
echo "$NEG_PW" > "$WORK/neg-redis-pw"
[[ $(admin ACL SETUSER "$NEG_USER" on ">$NEG_PW" '~ferry:*' '&*' +@all -@dangerous -@admin -hset) == OK ]] \
    || fail "ACL SETUSER failed"
trap 'admin ACL DELUSER "$NEG_USER" >/dev/null 2>&1 || true; cleanup' EXIT
hostport=${FERRY_REDIS_URL##*@}
SRC_B=$(bucket acl-src); DST_B=$(bucket acl-dst)
read -r n_obj n_bytes < <(seed_dataset "$SRC_B" data/ 5)
"$S3TOOL" mb "$DST_B" >/dev/null
DS="neg-acl-$RANDOM"
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"   # waits in Kafka meanwhile
rc=0
FERRY_REDIS_URL="redis://$NEG_USER@$hostport" FERRY_REDIS_PASSWORD_FILE="$WORK/neg-redis-pw" \
    timeout 90 "$WORKER" run "${COMMON_X[@]}" -X worker.id=acl >"$WORK/acl.out" 2>"$WORK/acl.log" || rc=$?
(( rc == 2 )) || { cat "$WORK/acl.log" >&2; fail "worker with a Redis user lacking HSET: exit $rc, want 2"; }
grep -q "the Redis user lacks a command ferry needs (HSET).*NOPERM.*'hset'" "$WORK/acl.log" \
    || { cat "$WORK/acl.log" >&2; fail "no error naming the missing command hset"; }
grep -q "$NEG_PW" "$WORK/acl.log" && fail "the Redis password appeared in the log"
# Nothing lost: a worker with the right user picks the event up and finishes it.
start_worker ok
wait_until 240 status_is "$DS" done || { cat "$WORK/ok.log" >&2; fail "the kept event was not migrated by a correctly configured worker"; }
assert_done_exact "$DS" "$n_obj" "$n_bytes" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_DLQ" -e -q -f '%k\n' 2>/dev/null | has -x "$DS" \
    && fail "$DS was dead-lettered"
note "ok: Redis ACL user without HSET -> NOPERM 'hset' named, event kept and migrated later"
