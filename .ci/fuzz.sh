#!/usr/bin/env bash
# Runs every fuzz target for a short time each (FUZZTIME, default 10s).
# -fuzzminimizetime keeps the minimisation of each new interesting input
# short: Go's default (60s per input) makes a short fuzz run look stalled.
# Usage: .ci/fuzz.sh [FUZZTIME]     e.g. .ci/fuzz.sh 2m
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-${FUZZTIME:-10s}}"
min="${FUZZMINIMIZETIME:-2s}"
run() { # run PACKAGE TARGET
  echo "== go test $1 -run '^\$' -fuzz '^$2\$' -fuzztime $t -fuzzminimizetime $min"
  go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$t" -fuzzminimizetime "$min"
}
run ./scenarios FuzzCluster
run ./scenarios FuzzStandalone
run ./scenarios FuzzReadJSONL
run ./core/node FuzzDecodeMessage
run ./core/reclog FuzzDecode
run ./core/reclog FuzzRecover
run ./core/reclog FuzzRecoverEdits
run ./core/statemach FuzzDecode
