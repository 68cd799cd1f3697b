#!/usr/bin/env bash
# ferry-producer serve --ingest with http.rate_limit_per_s (issue 8, HTTP ingest hardening):
# a burst of 16 concurrent POSTs at a limit of 4/s gets 202 for at most one second's worth
# (4, +1 for a token refilled meanwhile) and 429 with a Retry-After header and a JSON error
# for the rest; only the 202s are on Kafka; unauthenticated requests get 401 and use up no
# token; after waiting out Retry-After, requests are accepted again. Without the setting
# (default 0) the same burst is all 202.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/producer_lib.sh"
no_backstage

TOKEN="tok-$(head -c 18 /dev/urandom | base64 | tr -d '=+/')"
printf '%s\n' "$TOKEN" > "$WORK/token"
D="rl$(tr -cd 0-9 <<<"$RUN_ID" | tail -c 12)"

start() { # NAME ARGS... -> URL
    start_producer "$1" --http 127.0.0.1:0 --ingest --http-token-file "$WORK/token" "${@:2}"
    wait_until 20 grep -q 'http: listening on' "$WORK/$1.log" || fail "producer did not start: $(cat "$WORK/$1.log")"
    URL="http://127.0.0.1:$(grep -o 'http: listening on [^ ]* (port [0-9]*' "$WORK/$1.log" | grep -o '[0-9]*$')"
}
payload() { printf '{"type":"dataset_onboard","payload":{"dataset_name":"%s","source":"s3://%s-src/a/","target":"s3://%s-dst/a/"}}' "$1" "$D" "$D"; }
burst() { # NAME-PREFIX COUNT [TOKEN] -> one "code" per line in $WORK/burst.codes
    local i
    : >"$WORK/burst.curl"
    for ((i = 0; i < $2; i++)); do
        (( i > 0 )) && printf 'next\n' >>"$WORK/burst.curl"
        printf 'silent\nurl = "%s/v1/events"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata-binary = "%s"\nwrite-out = "%%{http_code}\\n"\noutput = "%s/resp-%s-%d"\n' \
            "$URL" "${3:-$TOKEN}" "$(payload "$1-$i" | sed 's/"/\\"/g')" "$WORK" "$1" "$i" >>"$WORK/burst.curl"
    done
    curl -s --parallel --parallel-max 16 -K "$WORK/burst.curl" >"$WORK/burst.codes" 2>"$WORK/burst.err"
}
count() { grep -cx "$1" "$WORK/burst.codes" || true; }

start p1 -X http.rate_limit_per_s=4
# Unauthenticated requests are refused before the limiter: they cost no token.
burst "$D-noauth" 10 "wrong-token"
[[ $(count 401) -eq 10 ]] || fail "wrong token: $(sort "$WORK/burst.codes" | uniq -c | tr '\n' ' ')"
burst "$D-a" 16
ok=$(count 202); limited=$(count 429)
note "16 concurrent POSTs at 4/s: $ok accepted, $limited rate-limited"
(( ok + limited == 16 )) || fail "unexpected codes: $(sort "$WORK/burst.codes" | uniq -c | tr '\n' ' ')"
(( ok >= 4 && ok <= 5 )) || fail "$ok accepted at 4/s (burst 4)"
r429=$(grep -l '"rate_limited"' "$WORK"/resp-"$D"-a-* | head -1)
[[ -n "$r429" ]] || fail "no 429 body names rate_limited"
ra=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "$(payload "$D-probe")" "$URL/v1/events" | tr -d '\r' | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
if [[ -n "$ra" ]]; then
    [[ $ra =~ ^[1-9][0-9]*$ ]] || fail "Retry-After '$ra' is not a positive integer"
    sleep "$ra"
fi
sleep 1.1
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "$(payload "$D-after")" "$URL/v1/events")
[[ $code == 202 ]] || fail "after waiting: $code"
probe_ok=$([[ -z "$ra" ]] && echo 1 || echo 0)
want=$((ok + 1 + probe_ok))
got=$(kcat -b "$FERRY_KAFKA_BROKERS" -C -t "$FERRY_TOPIC_ONBOARD" -e -q -f '%k\n' | grep -c "^$D-" || true)
[[ $got -eq $want ]] || fail "$got events on Kafka, expected $want (the 202s only)"
# Every 429 (the burst's and the probe's, if it was limited) is counted as rejected and
# under its code; the 401s never reached the ingest handler.
curl -s "$URL/metrics" >"$WORK/metrics.txt" || fail "GET /metrics failed"
want_rejected=$((limited + 1 - probe_ok))
rejected=$(sed -n 's/^ferry_producer_ingest_rejected_total \([0-9]*\)$/\1/p' "$WORK/metrics.txt")
[[ "$rejected" == "$want_rejected" ]] ||
    fail "ferry_producer_ingest_rejected_total is '${rejected}', expected $want_rejected (the 429s): $(grep ingest "$WORK/metrics.txt" | tr '\n' ' ')"
by_code=$(sed -n 's/^ferry_http_ingest_requests_total{code="429"} \([0-9]*\)$/\1/p' "$WORK/metrics.txt")
[[ "$by_code" == "$want_rejected" ]] ||
    fail "ferry_http_ingest_requests_total{code=\"429\"} is '${by_code}', expected $want_rejected"
stop_producer "$PRODUCER_PID" || true

# Default: no limit.
start p2
burst "$D-b" 16
[[ $(count 202) -eq 16 ]] || fail "no limit configured, yet: $(sort "$WORK/burst.codes" | uniq -c | tr '\n' ' ')"
# ASan/UBSan builds: any sanitizer report in any process's log fails the test.
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log "$WORK"/*.out 2>/dev/null; then fail "sanitizer report (files above)"; fi
note "ok: 4/s -> $ok of 16 accepted, 429 + Retry-After for the rest, 401s cost no token, accepted again after waiting; unlimited by default"
