package scenarios

import (
	"os"
	"strconv"
)

// envLong names the environment variable that turns on the exhaustive
// form of the tests whose full form is too slow for every `go test ./...`
// (about four more minutes on 2 cores). CI runs them (.ci/run):
//
//	WALRAFT_LONG=1 go test ./scenarios -run '^(TestVariantsCaught|TestPipelinedVariantsNeedThePath|TestStaleBatchRuleDefends|TestDeterminism)$'
//
// Without it each of those tests still runs a meaningful instance of its
// check, and can still fail: each variant is caught on a seed known to
// catch it (TestVariantsCaught), the stale-batch rule is shown defending
// on a seed known to reach it (TestStaleBatchRuleDefends), every scenario
// replays exactly on shortened runs (TestDeterminism). With it, the
// variant search starts at seed 1 as the promise says, the stale-batch
// search too, and determinism is judged on the full runs.
const envLong = "WALRAFT_LONG"

// long reports whether WALRAFT_LONG asks for the exhaustive tests (1,
// true; anything strconv.ParseBool does not read as true is no).
func long() bool {
	v, _ := strconv.ParseBool(os.Getenv(envLong))
	return v
}
