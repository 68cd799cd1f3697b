# shellcheck shell=bash
# Helpers of the `ferry-producer serve` tests (sourced after lib.sh).

TOPICDUMP=$BIN/tests/tools/ferry-topicdump
command -v jq >/dev/null || fail "jq is needed (scripts/install-deps)"

# The Backstage tests need the stack started with FERRY_STACK_BACKSTAGE=1.
require_backstage() {
    local v
    for v in FERRY_BACKSTAGE_URL FERRY_BACKSTAGE_TOKEN_FILE FERRY_STACK_BACKSTAGE_CATALOG_DIR \
             FERRY_STACK_PRODUCER_HTTP FERRY_STACK_PRODUCER_TOKEN_FILE; do
        if [[ -z "${!v:-}" ]]; then
            if [[ "${CI:-}" == true ]]; then echo "$v not set but CI=true" >&2; exit 1; fi
            echo "SKIP: $v not set (FERRY_STACK_BACKSTAGE=1 scripts/stack up)" >&2; exit 77
        fi
    done
    BACKSTAGE_AUTH="Authorization: Bearer $(<"$FERRY_BACKSTAGE_TOKEN_FILE")"
}

# Tests that do not poll Backstage must not pick up the stack's FERRY_BACKSTAGE_URL.
no_backstage() { unset FERRY_BACKSTAGE_URL FERRY_BACKSTAGE_TOKEN_FILE; }

# start_producer NAME ARGS... : `ferry-producer serve ARGS` in the background; its pid in
# $PRODUCER_PID (not printed: a $(...) subshell would not own the process), log in
# $WORK/NAME.log.
start_producer() {
    local name=$1; shift
    "$PRODUCER" serve "$@" >"$WORK/$name.out" 2>>"$WORK/$name.log" &
    PRODUCER_PID=$!
    PIDS+=("$PRODUCER_PID")
}

stop_producer() { # PID -> its exit code
    kill -TERM "$1" 2>/dev/null || true
    local rc=0
    wait "$1" || rc=$?
    return $rc
}

# All events on the test's onboard topic, decoded, one JSON object per line.
events() { "$TOPICDUMP" "$FERRY_TOPIC_ONBOARD"; }
events_for() { events | jq -c --arg k "$1" 'select(.key == $k)'; }
count_for() { events_for "$1" | wc -l; }
count_all() { events | wc -l; }
has_n_events_for() { [[ $(count_for "$1") -ge "$2" ]]; }

now_ms() { date +%s%3N; }

# Backstage catalog API (the stack's static token).
catalog_get() { # PATH -> JSON
    curl -sf --max-time 5 -H "$BACKSTAGE_AUTH" "$FERRY_BACKSTAGE_URL/api/catalog$1"
}
entity_json() { catalog_get "/entities/by-name/component/$1/$2"; }  # NS NAME
entity_field() { entity_json "$1" "$2" | jq -r "$3"; }              # NS NAME JQ
entity_gone() { ! entity_json "$1" "$2" >/dev/null 2>&1; }

# median of numbers on stdin
stats() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "min %d / median %d / max %d ms (n=%d)", a[1], a[int((NR+1)/2)], a[NR], NR}'; }
