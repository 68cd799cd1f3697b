# shellcheck shell=bash
# Shared helpers for ferry's bash scripts (sourced, not executed).

# Messages go to stderr so stdout stays clean for `eval "$(scripts/stack env)"`.
log()  { printf '%s\n' "stack: $*" >&2; }
warn() { printf '%s\n' "stack: warning: $*" >&2; }
die()  { printf '%s\n' "stack: error: $*" >&2; exit 1; }

# port_in_use PORT -> 0 if something listens on 127.0.0.1:PORT (or any address).
port_in_use() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

# free_port [EXCLUDED...] -> prints a port nobody listens on.
# Picks at random in 20000-32767: below Linux's ephemeral range (32768-60999),
# so outgoing connections never grab it between our check and the server's bind,
# and random so parallel stacks (other state dirs) rarely pick the same one.
free_port() {
    local port tries=0 ex taken
    while (( tries++ < 200 )); do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12768 ))
        taken=0
        for ex in "$@"; do [[ "$ex" == "$port" ]] && taken=1; done
        (( taken )) && continue
        port_in_use "$port" && continue
        echo "$port"
        return 0
    done
    die "no free TCP port found in 20000-32767"
}

# wait_until DEADLINE_EPOCH CMD... -> polls CMD every 0.5 s until it succeeds
# (returns 0) or the deadline passes (returns 1).
wait_until() {
    local deadline=$1; shift
    while :; do
        "$@" && return 0
        (( $(date +%s) >= deadline )) && return 1
        sleep 0.5
    done
}
