package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"walraft/scenarios"
)

// campaignSummary runs a fake campaign with -json and decodes its summary.
func campaignSummary(t *testing.T, args ...string) (*campaignJSON, string) {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"campaign", "-json", "-parallel", "1", "-determinism", "0", "-out", t.TempDir()}, args...)...)
	if code != exitOK && code != exitFail {
		t.Fatalf("campaign %v: exit %d\n%s", args, code, errs)
	}
	s := newCampaignJSON()
	if err := json.Unmarshal([]byte(out), s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return s, out
}

// campaign -for runs seeds until the time is up.
func TestCampaignFor(t *testing.T) {
	useFake(t, "basic")
	s, _ := campaignSummary(t, "-for", "400ms")
	if !s.TimeUp || s.For != "400ms" || s.Seeds < 2 || s.Interrupted || !s.OK {
		t.Fatalf("campaign -for: time_up %v for %q seeds %d interrupted %v ok %v", s.TimeUp, s.For, s.Seeds, s.Interrupted, s.OK)
	}
	// -seeds caps a timed campaign.
	s, _ = campaignSummary(t, "-for", "1h", "-seeds", "3")
	if s.TimeUp || s.Seeds != 3 {
		t.Fatalf("campaign -for 1h -seeds 3: time_up %v seeds %d", s.TimeUp, s.Seeds)
	}
	if code, _, errs := runCLI(t, "campaign", "-for", "-1s"); code != exitUsage || !strings.Contains(errs, "-for -1s") {
		t.Fatalf("campaign -for -1s: exit %d %s", code, errs)
	}
}

// -scenario all reports each scenario's results, in JSON and in text,
// and merge adds them up per scenario.
func TestCampaignByScenario(t *testing.T) {
	useFake(t, "basic")
	dir := t.TempDir()
	var files []string
	for _, sh := range []string{"0/2", "1/2"} {
		_, out := campaignSummary(t, "-scenario", "all", "-seeds", "6", "-variant", testVariant, "-shard", sh)
		f := filepath.Join(dir, strings.ReplaceAll(sh, "/", "-")+".json")
		if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	code, out, errs := runCLI(t, append([]string{"merge", "-json"}, files...)...)
	if code != exitFail {
		t.Fatalf("merge: exit %d\n%s", code, errs)
	}
	m := newCampaignJSON()
	if err := json.Unmarshal([]byte(out), m); err != nil {
		t.Fatal(err)
	}
	all := scenarios.Scenarios()
	if len(m.ByScenario) != len(all) {
		t.Fatalf("merged by_scenario has %d scenarios, want %d", len(m.ByScenario), len(all))
	}
	for _, sc := range all {
		b := m.ByScenario[sc.Name]
		// The fake fails seeds divisible by 3 when a variant runs: 3 and 6.
		if b == nil || b.Seeds != 6 || b.Failed != 2 || b.ViolationsByInvariant["S1"] != 2 {
			t.Errorf("scenario %s: %+v", sc.Name, b)
		}
	}
	_, text, _ := runCLI(t, append([]string{"merge"}, files...)...)
	if !strings.Contains(text, "by scenario:") || !strings.Contains(text, "S1 2") {
		t.Errorf("merge text lacks the per-scenario lines:\n%s", text)
	}
}

// merge refuses shards that ran different commits, unless told.
func TestMergeMixedCommits(t *testing.T) {
	useFake(t, "basic")
	dir := t.TempDir()
	var files []string
	for i, sh := range []string{"0/2", "1/2"} {
		s, _ := campaignSummary(t, "-seeds", "4", "-shard", sh)
		if i == 1 {
			s.Commit = "0123456789abcdef0123456789abcdef01234567"
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, strings.ReplaceAll(sh, "/", "-")+".json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	code, _, errs := runCLI(t, append([]string{"merge"}, files...)...)
	if code != exitUsage || !strings.Contains(errs, "different commits") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("merge of mixed commits: exit %d\n%s", code, errs)
	}
	code, _, errs = runCLI(t, append([]string{"merge", "-mixed-commits"}, files...)...)
	if code != exitOK || !strings.Contains(errs, "warning: the shards ran different commits") {
		t.Fatalf("merge -mixed-commits: exit %d\n%s", code, errs)
	}
}

// A passing campaign's acks=1 loss says it is allowed; an S5 failure says
// otherwise.
func TestAcksLostNote(t *testing.T) {
	s := newCampaignJSON()
	s.Acks["1"] = acksJSON{Sent: 1000, OK: 990, Lost: 380}
	s.derive()
	var b strings.Builder
	printCampaign(&b, s)
	if !strings.Contains(b.String(), "380  (allowed: acks=1 writes lost through a leader change before commit, cleanly; S5 held)") {
		t.Errorf("no allowance note:\n%s", b.String())
	}
	s.ViolationsByInvariant["S5"] = 1
	b.Reset()
	printCampaign(&b, s)
	if !strings.Contains(b.String(), "S5 violated in some runs") {
		t.Errorf("no S5 note:\n%s", b.String())
	}
}

// The default directory for found cases is git-ignored.
func TestDefaultCaseDirIgnored(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout")
	}
	cmd := exec.Command("git", "check-ignore", "-q", filepath.Join(defaultCaseDir, "default-x-seed1.json"))
	cmd.Dir = root
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s is not git-ignored: %v", defaultCaseDir, err)
	}
}
