package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A case whose scenario name is not a scenario (mistyped, edited) is
// refused: before, it replayed under a label that meant nothing.
func TestCaseUnknownScenarioRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wantErr bool
	}{
		{"default", false},
		{RapidScenario, false},
		{"defualt", true},
	} {
		c := testCase(t)
		c.Scenario, c.Options.Scenario = tc.name, tc.name
		err := c.Validate()
		if tc.wantErr != (err != nil) {
			t.Fatalf("scenario %q: err %v, want error %v", tc.name, err, tc.wantErr)
		}
		if tc.wantErr && (!errors.Is(err, ErrBadCase) || !strings.Contains(err.Error(), `unknown scenario "defualt"`)) {
			t.Fatalf("scenario %q: err %v", tc.name, err)
		}
	}
}

// A hand-edited case that asks for an unbounded workload is refused before
// it runs; every option any scenario draws is accepted.
func TestCaseOfferedLoadBounded(t *testing.T) {
	for _, sc := range Scenarios() {
		for seed := uint64(1); seed <= 300; seed++ {
			if err := checkOfferedLoad(sc.Draw(seed)); err != nil {
				t.Fatalf("%s seed %d: drawn options refused: %v", sc.Name, seed, err)
			}
		}
	}
	c := testCase(t)
	c.Options.Producers, c.Options.SafetyDuration = 10000, time.Hour
	err := c.Validate()
	if !errors.Is(err, ErrBadCase) || !strings.Contains(err.Error(), "10000 producers") {
		t.Fatalf("edited case: %v", err)
	}
}

// A case file over the size limit is reported with its real size (before:
// the size of what was read up to the limit).
func TestReadCaseReportsRealSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const size = 210 << 20
	if err := f.Truncate(size); err != nil { // sparse: no 210 MB written
		t.Fatal(err)
	}
	f.Close()
	_, err = ReadCase(path)
	if !errors.Is(err, ErrBadCase) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes (at most %d)", size, MaxCaseFileSize)) {
		t.Fatalf("err %v", err)
	}
}
