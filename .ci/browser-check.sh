#!/usr/bin/env bash
# Browser check of `walraft report`: renders the report of a failing variant
# case in headless Chromium (installed from Debian's packages when missing)
# and asserts on the DOM the page's script built: a lane per node plus the
# clients lane, the violation marker, the page's own error box empty, and no
# console error in Chromium's log. It also takes a screenshot; with
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
# From inside $tmp with a relative case path, so the page (and the
# screenshot in the README) names no path of this machine.
(cd "$tmp" && ./walraft report -o report.html cases/default-metadata-only-seed1.json)
page="${BROWSER_CHECK_PAGE:-$tmp/report.html}" # a test of this script can point it at a broken page

flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --virtual-time-budget=10000)
"$browser" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "file://$page" >"$tmp/dom.html" 2>"$tmp/chromium.log" || true

fail=0
check() { # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
lanes=$(grep -oE 'class="lane" data-node="[a-z0-9]+"' "$tmp/dom.html" | sort -u | wc -l)
check "page rendered (body data-rendered)" grep -q 'data-rendered="yes"' "$tmp/dom.html"
check "4 lanes: nodes 1-3 and clients (found $lanes)" test "$lanes" -eq 4
check "violation marker" grep -q 'id="violation-marker" data-invariant="S1"' "$tmp/dom.html"
check "lost-write op bars" grep -q 'class="op op-lost op-focus"' "$tmp/dom.html"
check "message arrows" grep -q 'class="msg' "$tmp/dom.html"
check "fault bands" grep -q 'class="fault' "$tmp/dom.html"
check "step lines" grep -q 'class="line-hwm"' "$tmp/dom.html"
check "page's error box empty" grep -q '<div id="js-errors" style="display:none"></div>' "$tmp/dom.html"
if grep -E 'CONSOLE|Uncaught' "$tmp/chromium.log" >"$tmp/console.txt"; then
  echo "FAIL console messages:"; cat "$tmp/console.txt"; fail=1
else
  echo "ok   no console errors"
fi

"$browser" "${flags[@]}" --window-size=1200,900 --screenshot="$tmp/report.png" "file://$page" >/dev/null 2>&1 || true
check "screenshot taken" test -s "$tmp/report.png"
if [ "${UPDATE_SCREENSHOT:-}" = 1 ]; then
  mkdir -p docs && cp "$tmp/report.png" docs/report.png && echo "docs/report.png updated"
fi
if [ "$fail" != 0 ]; then
  echo "browser-check: FAILED (DOM in $tmp kept)"; trap - EXIT; exit 1
fi
echo "browser-check: 9 passed, 0 failed"
