#!/usr/bin/env bash
# Redis AUTH with requirepass (the ACL-user case is in test_state and
# test_secrets_never_leak): ferry connects with the password from redis.password_file or
# the URL; a wrong password is a clear error that never shows the password.
source "$(dirname "$0")/lib.sh"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PW="rp-$RANDOM-s3cret-canary"
mkdir -p "$WORK/redis"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
    --requirepass "$PW" --daemonize no > "$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_until 10 redis-cli -p "$PORT" -a "$PW" --no-auth-warning ping || fail "redis with requirepass did not start"
echo "$PW" > "$WORK/pw"

# Password from a file (what a Kubernetes secret or systemd credential gives).
out=$(FERRY_REDIS_URL="redis://127.0.0.1:$PORT" FERRY_REDIS_PASSWORD_FILE="$WORK/pw" "$WORKER" status 2>&1) \
    || fail "status with the password file failed: $out"
grep -q "no migrations recorded\|DATASET" <<<"$out" || fail "unexpected status output: $out"
# Password in the URL (from the environment, never argv).
FERRY_REDIS_URL="redis://:$PW@127.0.0.1:$PORT" "$WORKER" status >/dev/null 2>&1 || fail "status with the URL password failed"
# Without and with a wrong password: a clear error, exit non-zero, password never printed.
out=$(FERRY_REDIS_URL="redis://127.0.0.1:$PORT" "$WORKER" status 2>&1) && fail "no password was accepted"
grep -qi "NOAUTH\|auth" <<<"$out" || fail "no clear error without a password: $out"
out=$(FERRY_REDIS_URL="redis://:wrong-$PW@127.0.0.1:$PORT" "$WORKER" status 2>&1) && fail "a wrong password was accepted"
grep -qi "WRONGPASS\|invalid\|auth" <<<"$out" || fail "no clear error for a wrong password: $out"
grep -q "$PW" <<<"$out" && fail "the password appeared in the error: $out"
# On argv it is refused outright.
"$WORKER" status -X "redis.url=redis://:$PW@127.0.0.1:$PORT" >/dev/null 2>&1 && fail "a password on argv was accepted"
note "ok: requirepass via file and URL; clear errors; password never printed"
