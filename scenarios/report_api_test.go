package scenarios

import (
	"errors"
	"strings"
	"testing"
)

// A case whose scenario name is not a scenario (mistyped, edited) is
// refused: before, it replayed under a label that meant nothing.
func TestCaseUnknownScenarioRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wantErr bool
	}{
		{DefaultScenario, false},
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
