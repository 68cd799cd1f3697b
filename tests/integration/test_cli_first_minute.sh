#!/usr/bin/env bash
# Issue 16, the first minute with the CLI: a one-shot command whose Kafka or Redis is
# missing gives up within --timeout (default 30 s) with ONE final line naming the service,
# the address and the cause, exit 1, and no librdkafka chatter before it; -X redis.url
# without credentials is accepted, with credentials refused (and the message says why);
# a bad dataset name is said once. The long-running worker keeps logging connection
# errors, at most one line per 10 s.
source "$(dirname "$0")/lib.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DEAD=$(free_port)  # nothing listens here: connections are refused at once
EID=5b0c4d1e-1111-4222-8333-$(printf '%012d' $((RANDOM * RANDOM)))

# run_timed MAX_S EXPECTED_RC CMD... : runs CMD, stderr to $WORK/err, fails unless it
# exits EXPECTED_RC within MAX_S seconds; ELAPSED_MS holds how long it took.
run_timed() {
    local max=$1 want=$2 rc=0 t0 t1; shift 2
    t0=$(date +%s%N)
    timeout $((max + 30)) "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    t1=$(date +%s%N)
    ELAPSED_MS=$(( (t1 - t0) / 1000000 ))
    [[ $rc == "$want" ]] || { cat "$WORK/err" >&2; fail "$* exited $rc, want $want"; }
    (( ELAPSED_MS <= max * 1000 )) || fail "$* took ${ELAPSED_MS} ms, bound ${max} s"
}
# last_line_is TEXT : the final stderr line, exactly; and no librdkafka line before it.
last_line_is() {
    local got
    got=$(tail -n 1 "$WORK/err")
    [[ "$got" == "$1" ]] || { cat "$WORK/err" >&2; fail "final line: got [$got], want [$1]"; }
    ! grep -q librdkafka "$WORK/err" || { cat "$WORK/err" >&2; fail "librdkafka lines on the terminal"; }
}

# 1. publish, broker unreachable, --timeout 3: ~3 s, not less than the timeout either.
run_timed 8 1 "$PRODUCER" publish --dataset xx.yy --source s3://aaa/b/ --target s3://ccc/d/ \
    --event-id "$EID" -X kafka.brokers="127.0.0.1:$DEAD" --timeout 3
(( ELAPSED_MS >= 2500 )) || fail "publish gave up after ${ELAPSED_MS} ms, before its 3 s timeout"
last_line_is "ferry-producer publish: event $EID NOT published: cannot reach Kafka at 127.0.0.1:$DEAD within 3 s: Connection refused"
note "publish --timeout 3, broker down: exit 1 after ${ELAPSED_MS} ms"

# 2. The same with the default timeout (30 s).
run_timed 45 1 "$PRODUCER" publish --dataset xx.yy --source s3://aaa/b/ --target s3://ccc/d/ \
    --event-id "$EID" -X kafka.brokers="127.0.0.1:$DEAD"
(( ELAPSED_MS >= 29000 )) || fail "publish gave up after ${ELAPSED_MS} ms, before its 30 s default"
last_line_is "ferry-producer publish: event $EID NOT published: cannot reach Kafka at 127.0.0.1:$DEAD within 30 s: Connection refused"
note "publish (default timeout), broker down: exit 1 after ${ELAPSED_MS} ms"

# 3. dlq-replayer, every command, broker unreachable.
for cmd in list "inspect 0:0" replay; do
    # shellcheck disable=SC2086
    run_timed 8 1 "$REPLAYER" $cmd -X kafka.brokers="127.0.0.1:$DEAD" --timeout 3
    last_line_is "ferry-dlq-replayer: cannot reach Kafka at 127.0.0.1:$DEAD within 3 s: Connection refused"
    note "dlq-replayer $cmd, broker down: exit 1 after ${ELAPSED_MS} ms"
done

# 4. dlq-replayer with Kafka up and Redis unreachable.
run_timed 8 1 "$REPLAYER" list -X redis.url="redis://127.0.0.1:$DEAD" --timeout 3
last_line_is "ferry-dlq-replayer: cannot reach Redis at 127.0.0.1:$DEAD/0: connect: Connection refused"
note "dlq-replayer list, Redis down: exit 1 after ${ELAPSED_MS} ms"

# 5. worker status, Redis unreachable (and -X redis.url without credentials is accepted).
run_timed 8 1 "$WORKER" status -X redis.url="redis://127.0.0.1:$DEAD" --timeout 3
last_line_is "ferry-worker status: cannot reach Redis at 127.0.0.1:$DEAD/0: connect: Connection refused"
note "worker status, Redis down: exit 1 after ${ELAPSED_MS} ms"
# against the stack's Redis it works when the URL holds no password
if [[ "$FERRY_REDIS_URL" != *@* ]]; then
    run_timed 10 0 "$WORKER" status -X redis.url="$FERRY_REDIS_URL"
fi

# 6. A redis URL with credentials on argv: refused, and the message says why.
run_timed 5 2 "$WORKER" status -X "redis.url=redis://u:canary-pw@127.0.0.1:$DEAD"
last_line_is "ferry-worker: redis.url carries credentials: set it in the config file or in FERRY_REDIS_URL (or the password in redis.password_file), not on the command line (other users can read it)"
! grep -q canary-pw "$WORK/err" || fail "the password was echoed"
run_timed 5 2 "$PRODUCER" publish --dataset xx --source s3://aaa/b/ --target s3://ccc/d/ \
    -X "redis.url=redis://:canary-pw@127.0.0.1:$DEAD"
last_line_is "ferry-producer publish: redis.url carries credentials: set it in the config file or in FERRY_REDIS_URL (or the password in redis.password_file), not on the command line (other users can read it)"

run_timed 5 2 "$WORKER" -X s3.target.secret_access_key=nope --dump-config
last_line_is "ferry-worker: s3.target.secret_access_key is a secret: set it in the config file or in FERRY_S3_TARGET_SECRET_ACCESS_KEY, not on the command line (other users can read it)"

# 7. Bad dataset name: said once.
run_timed 5 2 "$PRODUCER" publish --dataset "Bad Name" --source s3://aaa/b/ --target s3://ccc/d/
last_line_is "ferry-producer publish: dataset name must start with a lowercase letter or digit"
run_timed 5 2 "$PRODUCER" publish --dataset ok --source s3://aaa/b/ --target s3://ccc/d/ --include /x
last_line_is "ferry-producer publish: include prefix must not start with '/'"
run_timed 5 2 "$PRODUCER" publish --dataset ok --source s3://a/b/ --target s3://ccc/d/
last_line_is "ferry-producer publish: source: invalid s3:// location: bucket name must be 3 to 63 characters long"

# 8. The long-running worker keeps reporting a dead broker, rate-limited: within a 13 s
# window (librdkafka retries every second or so) at most 2 lines, and at least 1.
"$WORKER" run -X kafka.brokers="127.0.0.1:$DEAD" -X worker.id=fm1 >"$WORK/w.out" 2>"$WORK/w.log" &
WPID=$!; PIDS+=("$WPID")
wait_until 20 grep -q "Connection refused" "$WORK/w.log" || { cat "$WORK/w.log" >&2; fail "the worker did not report the dead broker"; }
holds_for 13 kill -0 "$WPID" || { cat "$WORK/w.log" >&2; fail "the worker exited"; }
n=$(grep -c 'librdkafka.*Connection refused' "$WORK/w.log" || true)
(( n >= 1 && n <= 3 )) || { cat "$WORK/w.log" >&2; fail "$n connection-error lines in ~13 s, want 1..3"; }
note "worker, broker down: $n connection-error lines in ~13 s"
note "ok: bounded waits, one clear final line each"
