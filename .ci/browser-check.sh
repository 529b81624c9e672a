#!/usr/bin/env bash
# Browser check of `walraft report`: renders the reports of two failing
# variant cases, one with faults and one minimized to no fault at all, in
# headless Chromium (installed from Debian's packages when missing) and
# asserts on the DOM the page's script built: a lane per node plus the
# clients lane, the violation marker, the page's own error box empty, and no
# console error in Chromium's log. A page whose script fails must show the
# error on the page. It also takes a screenshot; with
# UPDATE_SCREENSHOT=1 it replaces docs/report.png (the README's picture).
# Go tests stay free of the browser; .ci/run runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "browser-check: installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
  browser=$(command -v chromium)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/walraft" ./cmd/walraft
# metadata-only (the original note's design) loses acks=-1 writes on seed 1:
# the run exits 1 and writes the case.
code=0
"$tmp/walraft" run -variant metadata-only -seed 1 -out "$tmp/cases" >"$tmp/run.txt" || code=$?
if [ "$code" != 1 ]; then echo "browser-check: the variant run exited $code, want 1"; cat "$tmp/run.txt"; exit 1; fi
# ack-before-fsync fails on seed 2 with no fault at all: minimize takes its
# schedule down to none ("schedule": null), the case a report once drew
# without a diagram.
code=0
"$tmp/walraft" run -variant ack-before-fsync -seed 2 -out "$tmp/cases" >"$tmp/run2.txt" || code=$?
if [ "$code" != 1 ]; then echo "browser-check: the ack-before-fsync run exited $code, want 1"; cat "$tmp/run2.txt"; exit 1; fi
(cd "$tmp" && ./walraft minimize -q cases/default-ack-before-fsync-seed2.json) >"$tmp/min.txt" 2>&1 ||
  { echo "browser-check: minimize failed"; cat "$tmp/min.txt"; exit 1; }
# From inside $tmp with a relative case path, so the page (and the
# screenshot in the README) names no path of this machine.
(cd "$tmp" && ./walraft report -o report.html cases/default-metadata-only-seed1.json)
(cd "$tmp" && ./walraft report -o nofault.html cases/default-ack-before-fsync-seed2.min.json)
if ! grep -q '"schedule":\[\]' "$tmp/nofault.html"; then echo "browser-check: the minimized case still has faults"; cat "$tmp/min.txt"; exit 1; fi
page="${BROWSER_CHECK_PAGE:-$tmp/report.html}" # a test of this script can point it at a broken page
# A page whose data the script cannot use: its error must show on the page.
sed 's|<script type="application/json" id="data">.*</script>|<script type="application/json" id="data">{}</script>|' "$tmp/report.html" >"$tmp/broken.html"

flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --virtual-time-budget=10000)
dump() { # dump NAME PAGE: the DOM the page's script built, and Chromium's log
  "$browser" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "file://$2" >"$tmp/$1.dom" 2>"$tmp/$1.log" || true
}
dump report "$page"
dump nofault "$tmp/nofault.html"
dump broken "$tmp/broken.html"

# The DOM holds the script's own source too: each pattern below matches
# only what the script built (a test against $tmp/broken.dom shows that).
fail=0 passed=0
check() { # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok   $1"; passed=$((passed+1)); else echo "FAIL $1"; fail=$((fail+1)); fi
}
lanes() { grep -oE 'class="lane" data-node="[a-z0-9]+"' "$1" | sort -u | wc -l; }
no_console() { # no_console LOG
  if grep -E 'CONSOLE|Uncaught' "$1" >"$tmp/console.txt"; then cat "$tmp/console.txt"; return 1; fi
}
empty_errors() { grep -q '<div id="js-errors" style="display:none"></div>' "$1"; }

echo "-- a failing variant case with faults (metadata-only seed 1)"
dom=$tmp/report.dom n=$(lanes "$dom")
check "page rendered (body data-rendered)" grep -q 'data-rendered="yes"' "$dom"
check "4 lanes: nodes 1-3 and clients (found $n)" test "$n" -eq 4
check "violation marker" grep -q 'id="violation-marker" data-invariant="S1"' "$dom"
check "lost-write op bars" grep -q 'class="op op-lost op-focus"' "$dom"
check "message arrows" grep -qE '<g class="msg( msg-drop)?( msg-dup)?"' "$dom"
check "fault schedule table" grep -q '<div id="schedule"><table>' "$dom"
check "step lines" grep -q 'class="line-hwm"' "$dom"
check "page's error box empty" empty_errors "$dom"
check "no console errors" no_console "$tmp/report.log"

echo "-- a minimized case with no faults (ack-before-fsync seed 2)"
dom=$tmp/nofault.dom n=$(lanes "$dom")
check "page rendered (body data-rendered)" grep -q 'data-rendered="yes"' "$dom"
check "4 lanes: nodes 1-3 and clients (found $n)" test "$n" -eq 4
check "violation marker" grep -q 'id="violation-marker" data-invariant="S5"' "$dom"
check "message arrows" grep -qE '<g class="msg( msg-drop)?( msg-dup)?"' "$dom"
check "step lines" grep -q 'class="line-hwm"' "$dom"
check "schedule panel says no faults" grep -q '<div id="schedule"><p>no faults</p></div>' "$dom"
check "page's error box empty" empty_errors "$dom"
check "no console errors" no_console "$tmp/nofault.log"

echo "-- a page whose script fails shows the error"
check "error box shown, with the error" grep -qE '<div id="js-errors" style="display: block;" data-count="[1-9]' "$tmp/broken.dom"
check "nothing drawn on it (the patterns above see only what the script built)" bash -c '! grep -qE "data-rendered=\"yes\"|<g class=\"msg( msg-drop)?( msg-dup)?\"|class=\"line-hwm\"|id=\"violation-marker\" data-invariant=\"S|<div id=\"schedule\"><(table|p)>" "$1"' _ "$tmp/broken.dom"

"$browser" "${flags[@]}" --window-size=1200,900 --screenshot="$tmp/report.png" "file://$page" >/dev/null 2>&1 || true
check "screenshot taken" test -s "$tmp/report.png"
if [ "${UPDATE_SCREENSHOT:-}" = 1 ]; then
  mkdir -p docs && cp "$tmp/report.png" docs/report.png && echo "docs/report.png updated"
fi
if [ "$fail" != 0 ]; then
  echo "browser-check: $passed passed, $fail FAILED (DOM in $tmp kept)"; trap - EXIT; exit 1
fi
echo "browser-check: $passed passed, 0 failed"
