#!/usr/bin/env bash
# The worker's status page in a real browser (Debian's chromium, headless): while a
# paced migration runs, two DOM snapshots a few seconds apart show its progress rising
# (copied while listed, its total is "at least" and its bar indeterminate, never a full
# bar for a migration still running), then its exact total once done;
# a migration whose error message holds HTML is shown as text, never as markup; one
# screenshot is taken (copied to $FERRY_SCREENSHOT_OUT when set -- that is how
# docs/status-page.png is made).
#
# Skips (77) only if chromium cannot start at all, and only outside CI (CI=true: fail).
source "$(dirname "$0")/lib.sh"

# The page lists every migration in its Redis database; this test uses a database of
# its own (11), so it shows only what the test put there.
DB=11
export FERRY_REDIS_URL="${FERRY_REDIS_URL%/}/$DB"
rcli() { redis-cli -u "$FERRY_REDIS_URL" "$@"; }
rcli --scan --pattern 'ferry:*' | while read -r k; do rcli DEL "$k" >/dev/null; done

# ---- a browser that starts ------------------------------------------------------------
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
CHROME_ARGS=(--headless --disable-gpu --no-first-run --no-default-browser-check
             --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$WORK/chrome-profile")
cannot_start() {
    if [[ "${CI:-}" == true ]]; then fail "chromium cannot start (CI=true): $*"; fi
    echo "SKIP: chromium cannot start: $*" >&2
    exit 77
}
[[ -n "$CHROME" ]] || cannot_start "not installed (apt-get install chromium)"
probe_chrome() { timeout 60 "$CHROME" "${CHROME_ARGS[@]}" "$@" --dump-dom 'data:text/html,<p>ferry</p>' 2>"$WORK/chrome-probe.log" | has ferry; }
if ! probe_chrome; then
    # As root, or where user namespaces are off, the sandbox cannot start.
    CHROME_ARGS+=(--no-sandbox)
    probe_chrome || cannot_start "$(tail -3 "$WORK/chrome-probe.log")"
fi
note "browser: $("$CHROME" --version 2>/dev/null | head -1)"

# dump URL -> the DOM after the page's script ran (virtual time lets its fetch finish)
dump() { timeout 60 "$CHROME" "${CHROME_ARGS[@]}" --virtual-time-budget=4000 --dump-dom "$1" 2>>"$WORK/chrome.log"; }
# row_attr FILE DATASET ATTR -> the attribute of that dataset's table row
row_attr() {
    grep -o "<tr [^>]*data-dataset=\"$2\"[^>]*>" "$1" | head -1 | sed -n "s/.* $3=\"\\([^\"]*\\)\".*/\\1/p"
}
# row_html FILE DATASET -> that dataset's whole table row
row_html() { grep -o "<tr [^>]*data-dataset=\"$2\".*" "$1" | head -1 | sed 's|</tr>.*|</tr>|'; }

# ---- the scene ------------------------------------------------------------------------
SRC_B=$(bucket page-src); DST_B=$(bucket page-dst)
read -r N _ < <(seed_dataset "$SRC_B" sales/orders/ 700 40000)
"$S3TOOL" seed "s3://$SRC_B/finance/ledger/" --count 40 --min-size 0 --max-size 90000 --seed 5 >/dev/null
"$S3TOOL" mb "$DST_B"
DS=sales.orders-$RANDOM
SMALL=finance.ledger-$RANDOM

# A failed migration whose error message is hostile markup (error messages are not
# validated anywhere). The page must show it as text.
XSS=xss-probe-$RANDOM
now_ms=$(($(date +%s) * 1000))
rcli HSET "ferry:{$XSS}:state" status failed event_id 00000000-0000-4000-8000-000000000001 \
    worker '<i>w9</i>' source_uri "s3://$SRC_B/nope/" \
    target_uri "s3://$DST_B/nope/" objects_done 3 objects_total 10 bytes_done 1234 \
    started_at $((now_ms - 60000)) updated_at $((now_ms - 30000)) finished_at $((now_ms - 30000)) \
    error_class validation \
    last_error 'target bucket <img src=x onerror="document.title=1"><b>lake</b> & "more" </td></tr> is missing' >/dev/null

start_worker page1 --http 127.0.0.1:0 -X copy.max_requests_per_second=50 -X copy.max_in_flight=4 \
    -X copy.page_size=100
wait_until 30 grep -q 'http: listening on' "$WORK/page1.log" || { cat "$WORK/page1.log" >&2; fail "no listener"; }
PORT=$(sed -n 's/.*http: listening on [^ ]* (port \([0-9]*\)).*/\1/p' "$WORK/page1.log" | head -1)
URL="http://127.0.0.1:$PORT/status"
wait_until 60 grep -q 'assigned [0-9]* partition' "$WORK/page1.log" || fail "worker never joined"

# One finished migration, then the one to watch.
publish "$SMALL" "s3://$SRC_B/finance/ledger/" "s3://$DST_B/finance/ledger/"
wait_until 60 status_is "$SMALL" done || { tail -20 "$WORK/page1.log" >&2; fail "$SMALL did not finish"; }
publish "$DS" "s3://$SRC_B/sales/orders/" "s3://$DST_B/sales/orders/"
wait_until 60 bash -c "(( \$(redis-cli -u '$FERRY_REDIS_URL' --raw HGET 'ferry:{$DS}:state' objects_done || echo 0) >= 20 ))" \
    || { tail -20 "$WORK/page1.log" >&2; fail "migration did not start"; }

# ---- two snapshots, a screenshot between them -------------------------------------------
dump "$URL" > "$WORK/dom1.html"
d1=$(row_attr "$WORK/dom1.html" "$DS" data-objects-done)
t1=$(row_attr "$WORK/dom1.html" "$DS" data-objects-total)
s1=$(row_attr "$WORK/dom1.html" "$DS" data-status)
lb1=$(row_attr "$WORK/dom1.html" "$DS" data-total-lower-bound)
r1=$(row_html "$WORK/dom1.html" "$DS")
timeout 60 "$CHROME" "${CHROME_ARGS[@]}" --virtual-time-budget=4000 --window-size=1280,330 \
    --screenshot="$WORK/status-page.png" "$URL" 2>>"$WORK/chrome.log" >/dev/null
sleep 1
dump "$URL" > "$WORK/dom2.html"
d2=$(row_attr "$WORK/dom2.html" "$DS" data-objects-done)
t2=$(row_attr "$WORK/dom2.html" "$DS" data-objects-total)
note "snapshots: $d1 of $t1 then $d2 of $t2 objects ($s1, total a lower bound: $lb1)"
[[ -n "$d1" && -n "$d2" ]] || { head -c 3000 "$WORK/dom1.html" >&2; fail "the page shows no row for $DS"; }
[[ "$s1" == running ]] || fail "first snapshot status: $s1"
(( d1 > 0 && d2 > d1 )) || fail "progress did not increase between snapshots: $d1 -> $d2"
# 700 objects, fewer than fanout.copy_before_count: copied as listed, no count first.
# The listing runs a page or two (of 100) ahead of the paced copy, so at the first
# snapshot (>= 20 done) the total is what was listed so far, marked as at least that.
[[ "$lb1" == true ]] || fail "first snapshot: total $t1 of $N not shown as a lower bound ('$lb1')"
(( t1 >= d1 && t1 < N )) || fail "first snapshot: lower bound $t1 (done $d1, dataset $N)"
has -F "<td class=\"num objects\">$d1 / ≥ $t1</td>" <<<"$r1" || fail "no '$d1 / ≥ $t1' in: $r1"
has -F '<progress max="1"></progress><span class="pct">?</span>' <<<"$r1" \
    || fail "a migration still listed must have an indeterminate bar: $r1"
[[ "$(row_attr "$WORK/dom2.html" "$SMALL" data-status)" == done ]] || fail "$SMALL not shown as done"
# A known total gives a bar with a value (the failed probe below: 3 of 10).
has -F '<progress max="1" value="0.3" class="failed"></progress><span class="pct">30.0%</span>' \
    <<<"$(row_html "$WORK/dom2.html" "$XSS")" || fail "no 30% bar for $XSS: $(row_html "$WORK/dom2.html" "$XSS")"
# how the finished one was verified (S3Proxy: MD5 ETags), as the state records it
v=$(state_field "$SMALL" verify)
[[ -n "$v" && "$(row_attr "$WORK/dom2.html" "$SMALL" data-verify)" == "$v" ]] \
    || fail "$SMALL: verification shown '$(row_attr "$WORK/dom2.html" "$SMALL" data-verify)', state '$v'"
grep -q "<td class=\"verify\">${v//,/, }</td>" "$WORK/dom2.html" || fail "no 'verified by' cell '$v' for $SMALL"

# ---- escaping -------------------------------------------------------------------------
grep -q "data-dataset=\"$XSS\"" "$WORK/dom2.html" || fail "the failed migration is not listed"
grep -q 'target bucket &lt;img src=x onerror="document.title=1"&gt;&lt;b&gt;lake&lt;/b&gt; &amp; "more" &lt;/td&gt;&lt;/tr&gt; is missing' "$WORK/dom2.html" \
    || { grep -o '<td class="error"[^<]*' "$WORK/dom2.html" >&2; fail "the error message is not shown as text"; }
grep -q '<img\|<b>lake\|<i>w9' "$WORK/dom2.html" && fail "hostile markup reached the DOM"
grep -q '&lt;i&gt;w9&lt;/i&gt;' "$WORK/dom2.html" || fail "the worker name is not shown as text"
grep -q '<title>ferry · migrations</title>' "$WORK/dom2.html" || fail "the page title was changed by injected script"

# ---- the screenshot -------------------------------------------------------------------
[[ "$(head -c 8 "$WORK/status-page.png" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] \
    || fail "no PNG screenshot"
(( $(stat -c %s "$WORK/status-page.png") > 10000 )) || fail "the screenshot is suspiciously small"
if [[ -n "${FERRY_SCREENSHOT_OUT:-}" ]]; then cp "$WORK/status-page.png" "$FERRY_SCREENSHOT_OUT"; fi

wait_until 120 status_is "$DS" done || fail "migration did not finish"
# Once listed to the end, the total is exact.
dump "$URL" > "$WORK/dom3.html"
r3=$(row_html "$WORK/dom3.html" "$DS")
[[ "$(row_attr "$WORK/dom3.html" "$DS" data-objects-total)" == "$N" &&
   "$(row_attr "$WORK/dom3.html" "$DS" data-total-lower-bound)" == false ]] \
    || fail "done: total not shown as exactly $N: $r3"
has -F "<td class=\"num objects\">$N / $N</td>" <<<"$r3" || fail "no '$N / $N' once done: $r3"
has -F '<progress max="1" value="1" class="done"></progress>' <<<"$r3" || fail "no full bar once done: $r3"
rcli DEL "ferry:{$XSS}:state" >/dev/null
note "ok: progress $d1 of >= $t1 -> $d2, then $N of $N in the browser, hostile text escaped, screenshot taken"
