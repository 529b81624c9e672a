package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// maxSummarySize bounds one summary file read by merge, and
// maxMergeTotal all of them together, so merge's memory is bounded
// whatever it is given (a summary lists at most one line per failing seed).
const (
	maxSummarySize = 64 << 20
	maxMergeTotal  = 256 << 20
)

// cmdMerge combines the -json summaries of a sharded campaign: `walraft
// merge`.
func cmdMerge(args []string, st stdio) int {
	fs := newFlags("merge", st)
	asJSON := fs.Bool("json", false, "print the merged summary as one JSON object")
	partial := fs.Bool("partial", false, "merge even when some shards are missing")
	mixed := fs.Bool("mixed-commits", false, "merge shards that ran different commits (their seeds then ran different code)")
	files, code := parseFlags(fs, args, 1, -1)
	if code >= 0 {
		return code
	}
	var sums []*campaignJSON
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			if total += fi.Size(); total > maxMergeTotal {
				return usageErr(st, "merge", "the summaries add up to more than %d bytes (at %s): merge fewer at a time", maxMergeTotal, f)
			}
		}
		s, err := readSummary(f)
		if err != nil {
			return usageErr(st, "merge", "%v", err)
		}
		sums = append(sums, s)
	}
	m, missing, err := mergeSummaries(sums, files)
	if err != nil {
		return usageErr(st, "merge", "%v", err)
	}
	if strings.Contains(m.Commit, ",") {
		if !*mixed {
			return usageErr(st, "merge", "the shards ran different commits (%s): their seeds ran different code; re-run them at one commit, or pass -mixed-commits", m.Commit)
		}
		fmt.Fprintf(st.err, "walraft merge: warning: the shards ran different commits (%s)\n", m.Commit)
	}
	if len(missing) > 0 {
		if !*partial {
			return usageErr(st, "merge", "shards %s missing (pass -partial to merge anyway)", strings.Join(missing, ", "))
		}
		fmt.Fprintf(st.err, "walraft merge: warning: shards %s missing\n", strings.Join(missing, ", "))
	}
	if *asJSON {
		if err := writeJSON(st.out, m); err != nil {
			fmt.Fprintf(st.err, "walraft merge: %v\n", err)
			return exitFail
		}
	} else {
		fmt.Fprintf(st.out, "merged %d summaries (shards %s)\n", len(sums), strings.Join(m.Shards, " "))
		printCampaign(st.out, m)
	}
	if !m.OK {
		return exitFail
	}
	return exitOK
}

// readSummary reads one campaign -json summary strictly.
func readSummary(path string) (*campaignJSON, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSummarySize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxSummarySize {
		size := int64(len(b))
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		return nil, fmt.Errorf("%s: %d bytes, larger than a summary can be (at most %d)", path, size, maxSummarySize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	s := newCampaignJSON()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%s: not a campaign -json summary: %v", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the summary object", path)
	}
	if s.Shard == "" || len(s.Scenarios) == 0 {
		return nil, fmt.Errorf("%s: not a campaign -json summary (no shard or scenarios)", path)
	}
	return s, nil
}

// mergeSummaries combines shard summaries of one campaign. They must agree
// on scenarios, variant, first seed and seed count and hold disjoint shards
// of the same split. It returns the merged summary and the missing shards.
// Rates are for shards that ran at the same time: wall time is the
// longest shard's, so seeds/s and the sim/wall ratio add up.
func mergeSummaries(sums []*campaignJSON, names []string) (*campaignJSON, []string, error) {
	m := newCampaignJSON()
	first := sums[0]
	m.Scenarios, m.Variant, m.Start, m.SeedsRequested = first.Scenarios, first.Variant, first.Start, first.SeedsRequested
	var n uint64
	have := map[uint64]string{}
	commits := map[string]bool{}
	for k, s := range sums {
		switch {
		case !slices.Equal(s.Scenarios, first.Scenarios) || s.Variant != first.Variant ||
			s.Start != first.Start || s.SeedsRequested != first.SeedsRequested:
			return nil, nil, fmt.Errorf("%s and %s are not shards of the same campaign (scenarios, variant, -start or -seeds differ)", names[0], names[k])
		}
		shards := s.Shards
		if len(shards) == 0 {
			shards = []string{s.Shard}
		}
		for _, x := range shards {
			sh, err := parseShard(x)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %v", names[k], err)
			}
			if n == 0 {
				n = sh.n
			}
			if sh.n != n {
				return nil, nil, fmt.Errorf("%s: shard %s is not of the same split as %d/%d", names[k], sh, 0, n)
			}
			if prev, dup := have[sh.i]; dup {
				return nil, nil, fmt.Errorf("shard %s appears in both %s and %s: the seeds would be counted twice", sh, prev, names[k])
			}
			have[sh.i] = names[k]
		}
		commits[s.Commit] = true
		m.Parallel += s.Parallel
		m.Seeds += s.Seeds
		m.Failures = append(m.Failures, s.Failures...)
		m.Failed += s.Failed
		for k, v := range s.ViolationsByInvariant {
			m.ViolationsByInvariant[k] += v
		}
		m.BeyondBudget += s.BeyondBudget
		m.Interrupted = m.Interrupted || s.Interrupted
		m.SimSeconds += s.SimSeconds
		m.WallSeconds = max(m.WallSeconds, s.WallSeconds)
		m.RunSeconds += s.RunSeconds
		m.Events += s.Events
		for k, a := range s.Acks {
			t := m.Acks[k]
			t.add(a)
			m.Acks[k] = t
		}
		for k, v := range s.Probes {
			m.Probes[k] += v
		}
		for k, v := range s.ProbeHits {
			m.ProbeHits[k] += v
		}
		for k, v := range s.ScenarioRuns {
			m.ScenarioRuns[k] += v
		}
		m.DeterminismChecked += s.DeterminismChecked
		m.Mismatches = append(m.Mismatches, s.Mismatches...)
		for name, sc := range s.ByScenario {
			m.scenario(name).merge(sc)
		}
		m.TimeUp = m.TimeUp || s.TimeUp
		if m.For == "" {
			m.For = s.For
		}
		m.Avail.merge(s.Avail)
	}
	var missing []string
	for i := uint64(0); i < n; i++ {
		if _, ok := have[i]; ok {
			m.Shards = append(m.Shards, fmt.Sprintf("%d/%d", i, n))
		} else if len(missing) < 20 {
			missing = append(missing, fmt.Sprintf("%d/%d", i, n))
		}
	}
	if len(missing) == 0 {
		m.Shard = fmt.Sprintf("all/%d", n)
	} else {
		var is []string
		for _, s := range m.Shards {
			is = append(is, strings.TrimSuffix(s, fmt.Sprintf("/%d", n)))
		}
		m.Shard = strings.Join(is, ",") + fmt.Sprintf("/%d", n)
	}
	var cs []string
	for c := range commits {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	m.Commit = strings.Join(cs, ",")
	m.derive()
	return m, missing, nil
}
