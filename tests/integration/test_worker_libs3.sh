#!/usr/bin/env bash
# Scenario 8 (libs3): the opt-in Signature V2 backend (Debian's libs3 2.0) migrates a
# dataset against S3Proxy with V2 authentication.
source "$(dirname "$0")/lib.sh"

SRC_B=$(bucket v2-src); DST_B=$(bucket v2-dst)
read -r N BYTES < <(seed_dataset "$SRC_B" data/ 60 50000)
"$S3TOOL" mb "$DST_B"
DS=v2-$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
start_worker v1 -X s3.backend=libs3
wait_until 120 status_is "$DS" done || { cat "$WORK/v1.log" >&2; fail "not done"; }
assert_done_exact "$DS" "$N" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
# libs3 2.0 does not verify TLS certificates: https is refused unless explicitly allowed.
# The worker refuses at startup and exits by itself; 60 s is a generous bound for that.
rc=0
out=$(FERRY_S3_ENDPOINT=https://127.0.0.1:1 timeout 60 "$WORKER" -X s3.backend=libs3 -X kafka.brokers=127.0.0.1:1 2>&1) || rc=$?
(( rc != 124 )) || fail "waited 60 s for the worker to refuse libs3 over https and exit; it kept running: $out"
(( rc != 0 )) || fail "the worker exited 0 with libs3 over https: $out"
grep -qi "certificate\|insecure_tls_ok" <<<"$out" || fail "libs3 over https was not refused (exit $rc): $out"
note "ok: $N objects migrated with Signature V2"
