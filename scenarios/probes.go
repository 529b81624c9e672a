package scenarios

// Probes count the dangerous states a run reached (harness.probe). Each is
// registered here as required or optional: a required probe stands for a
// check or code path the harness promises to exercise, so a campaign of at
// least CoverageMinRuns runs of every scenario fails when one is never
// reached (the check behind it is then untested, DESIGN.md section 6).

import (
	"fmt"
	"sort"
	"strings"
)

// ProbeSpec describes one probe.
type ProbeSpec struct {
	Name     string
	Required bool
	Doc      string
}

// CoverageMinRuns is the number of runs of every scenario from which a
// campaign judges coverage (fewer runs may miss a rare probe by chance).
const CoverageMinRuns = 200

// probeRegistry is every probe the harness may count, one doc line each.
var probeRegistry = []ProbeSpec{
	// Faults applied.
	{"crash", true, "a node crashed (clean or torn) by the schedule"},
	{"crash-all", true, "every node crashed at once"},
	{"process-killed", true, "a node's process was killed with its machine up (page cache kept): a drawn crash's or a fail-stop's restart (Options.KillProb)"},
	{"killed-read-unsynced", true, "a node killed with its machine up restarted over writes its disk did not hold yet (its page cache held more than the medium)"},
	{"pause", true, "a node's process paused"},
	{"partition", true, "a partition, isolation, one-way cut or bridge applied"},
	{"partition-during-fsync", true, "a network fault while some node had an fsync in flight"},
	{"fsync-stall", true, "a node's fsyncs stalled"},
	{"fsync-eio", true, "a node's next fsyncs set to fail with EIO"},
	{"write-eio", true, "a node's next writes set to fail with EIO"},
	{"corrupt", false, "synced bytes corrupted (beyond the fault budget; never drawn by the in-budget scenarios)"},
	// Dangerous states of the system under test.
	{"leader-crash-with-unreplicated-batch", true, "a leader crashed with a durable batch not yet committed"},
	{"leader-gate-open", true, "a new leader applied an entry of its term and opened its produce gate"},
	{"uncommitted-suffix-truncated", true, "a new leader truncated an uncommitted WAL suffix (DESIGN.md 3.2)"},
	{"stale-batch-rejected", false, "a committed batch whose base was not the committed end was rejected (DESIGN.md 3.2); " +
		"optional: a new leader's produce gate opens only after it applied an entry of its own term, so a correct leader never proposes " +
		"at a stale base and no correct run reaches the rule except through a bug (testdata/open's crashes seed 121: a hung leader keeps " +
		"batches it never proposed in its WAL); the gate-before-apply variant reaches it in the zombie scenario, where " +
		"TestStaleBatchRuleDefends checks the rule keeps the committed log whole"},
	{"recovery-cut-by-overwrite", true, "a recovering node's log was overwritten by a leader below its recovery point"},
	{"restart-recovering", true, "a restarted node held entries past its durable commit index (recovering)"},
	{"segment-rotated", true, "a WAL or Raft log rotated to a new segment file (swarmed small segments)"},
	{"node-fail", true, "a node stopped after a storage failure (fail-stop)"},
	{"node-failstop", true, "the harness restarted a node that had stopped itself"},
	{"boot-io-error", false, "an injected I/O error during recovery stopped a boot"},
	{"legacy-entry-applied", true, "a legacy canonical (one record) entry was applied"},
	{"request-timeout", false, "a client request got no answer within its timeout (a paused node)"},
	{"indeterminate-retry", true, "a client retried a write whose outcome was indeterminate"},
	// Linux disk semantics, clock steps and link quality (faults_sim.go).
	{"enospc", true, "a write failed with ENOSPC"},
	{"fsync-failed-dropped", true, "a failed fsync dropped or cleaned its dirty blocks (Linux semantics)"},
	{"fsync-failed-written-back", true, "a failed fsync had written some of its blocks back before it failed: they are durable all the same"},
	{"timeoutnow-ignored-hung", false, "a node whose disk hangs ignored a leadership transfer's MsgTimeoutNow (it must not campaign); optional: needs a transfer aimed at a hung follower"},
	{"fsync-stall-log", true, "one log's fsyncs stalled while the node's other logs' went on"},
	{"fsync-stall-dir", false, "a node's directory syncs stalled while its file syncs went on"},
	{"fsync-hang", true, "a node's disk hung (syncs complete only at the end of the hang)"},
	{"loop-blocked-by-fsync", true, "a sync issued during a hang blocked the node's event loop"},
	{"read-eio-on-recovery", true, "a read failed with EIO while a node recovered"},
	{"clock-step-forward", true, "a node's clock jumped forward"},
	{"clock-step-back", true, "a node's clock jumped back"},
	{"link-quality", true, "a directed link got its own latency, jitter, loss and duplication"},
	// Crash points (crashpoint.go): optional, only a sweep arms them.
	{"crash-at-disk-event", false, "a crash-point fault crashed its node at the chosen disk event"},
	{"kill-at-disk-event", false, "a crash-point fault killed its node's process (machine up) at the chosen disk event"},
	{"crash-at-write", false, "a crash point fired at a write"},
	{"crash-at-truncate", false, "a crash point fired at a truncate"},
	{"crash-at-sync", false, "a crash point fired as a sync was issued"},
	{"crash-at-sync.done", false, "a crash point fired as a sync completed, before the node heard of it"},
	{"crash-at-create", false, "a crash point fired at a file create"},
	{"crash-at-remove", false, "a crash point fired at a file remove"},
	{"crash-at-syncdir", false, "a crash point fired as a directory sync was issued"},
	{"crash-at-syncdir.done", false, "a crash point fired as a directory sync completed"},
	// Corruption of one replica (corrupt.go) and the calm workload of the
	// liveness phase (live_calm.go).
	{"corrupt-synced-raft", true, "a corrupt fault damaged a byte of a node's Raft log that the format proves was synced"},
	{"corrupt-synced-wal", true, "a corrupt fault damaged a byte of a node's WAL that the format proves was synced"},
	{"corrupt-refused", true, "a node whose synced data was corrupted refused to open (fail-stop, DESIGN.md 3.10)"},
	{"corrupt-boot-intact", false, "a corrupted node booted with its durable Raft state intact (the damaged block was rewritten, or it booted from an undamaged copy)"},
	{"corrupt-no-proven-spot", false, "a corrupt fault found no byte the log's format proves synced, and damaged nothing"},
	{"liveness-calm-load", true, "the liveness phase ran its calm workload before the probe write"},
	// The pipelined path (core/node/pipeline.go).
	{"pipelined-applied-before-wal-fsync", true, "pipelined path: an entry applied on the leader before its WAL fsync completed"},
	{"pipelined-wal-suffix-rebuilt", true, "pipelined path: recovery rebuilt a WAL suffix from the Raft log"},
	{"pipelined-mixed-wal-batch", false, "pipelined path: one WAL batch held produce appends and applied records written without an fsync (the produce fsync covers both)"},
	{"pipelined-leader-held-for-term-sync", false, "pipelined path: a new leader held its messages until its term was durable (asynchronous storage writes let it win before its own sync)"},
	{"pipelined-applied-wal-rebuilt", true, "pipelined path: a restarted node rewrote from its Raft log records of another node's batch that its WAL had lost (applied records are written without an fsync)"},
	{"pipelined-fsync-error-after-proposal", true, "pipelined path: a WAL fsync failed after its batch was proposed (answers indeterminate)"},
	// Aimed and triggered faults.
	{"trigger-armed", true, "a triggered fault was armed"},
	{"trigger-fired", true, "a triggered fault's event happened and the fault fired"},
	{"target-unresolved", false, "an aimed fault named nobody when it fired (no leader, nobody voted yet)"},
	{"transfer-leader", true, "a leader was asked to transfer leadership"},
	{"transfer-leader-noop", false, "a transfer-leader fault found no leader or aimed at the leader itself"},
	{"transfer-aborted-for-batch", false, "a leader aborted its leadership transfer to propose a batch it had written in its term " +
		"(optional: only the hung-disk step-down transfers while writes wait, and they reach the proposal only if the disk returns first)"},
	{"stale-append-ack-dropped", false, "a node dropped an append acknowledgement of an older term, after its sync, because a newer leader's entries replaced " +
		"or cut what it acknowledged (optional: two leaders' appends must reach one follower within one of its Raft-log fsyncs; the overwrite scenario aims at it, about one run in four)"},
}

func init() {
	for _, t := range targets {
		probeRegistry = append(probeRegistry, ProbeSpec{"target-" + string(t), false, "an aimed fault hit its target " + string(t)})
	}
	for _, e := range triggerEvents {
		probeRegistry = append(probeRegistry, ProbeSpec{"trigger-" + string(e), false, "a trigger fired on event " + string(e)})
	}
}

// Probes returns the registry sorted by name.
func Probes() []ProbeSpec {
	out := append([]ProbeSpec(nil), probeRegistry...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupProbe finds a registered probe.
func LookupProbe(name string) (ProbeSpec, bool) {
	for _, p := range probeRegistry {
		if p.Name == name {
			return p, true
		}
	}
	return ProbeSpec{}, false
}

// ProbeCoverage is one probe's row in a campaign's coverage table.
type ProbeCoverage struct {
	Name     string  `json:"name"`
	Required bool    `json:"required"`
	Runs     int     `json:"runs"` // runs that reached it
	Rate     float64 `json:"rate"` // Runs / all runs
}

// Coverage judges a correct-system campaign's probe coverage. scenarioRuns
// counts runs per scenario, probeRuns the runs that reached each probe. It
// returns every registered probe's row (and any unregistered probe seen, as
// optional), whether the campaign is large enough to judge (every scenario
// of the catalogue run at least CoverageMinRuns times), and the required
// probes never reached (only when judged).
func Coverage(scenarioRuns, probeRuns map[string]int) (rows []ProbeCoverage, judged bool, missing []string) {
	total := 0
	for _, n := range scenarioRuns {
		total += n
	}
	judged = true
	for _, s := range catalogue {
		judged = judged && scenarioRuns[s.Name] >= CoverageMinRuns
	}
	rate := func(n int) float64 {
		if total == 0 {
			return 0
		}
		return float64(n) / float64(total)
	}
	seen := map[string]bool{}
	for _, p := range Probes() {
		seen[p.Name] = true
		rows = append(rows, ProbeCoverage{Name: p.Name, Required: p.Required, Runs: probeRuns[p.Name], Rate: rate(probeRuns[p.Name])})
		if judged && p.Required && probeRuns[p.Name] == 0 {
			missing = append(missing, p.Name)
		}
	}
	var extra []string
	for k := range probeRuns {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		rows = append(rows, ProbeCoverage{Name: k, Runs: probeRuns[k], Rate: rate(probeRuns[k])})
	}
	return rows, judged, missing
}

// CoverageFailure is the one line a campaign prints when required probes
// were never reached.
func CoverageFailure(missing []string, runs int) string {
	return fmt.Sprintf("coverage: required probe %s never reached in %d runs (every scenario >= %d runs): the check behind it is untested",
		strings.Join(missing, ", "), runs, CoverageMinRuns)
}

// ExpectMinRuns is the number of runs of one scenario from which a campaign
// judges the scenario's expected probes.
const ExpectMinRuns = 10

// ExpectedProbes returns the probes a correct system reaches in nearly every
// run of the scenario: each reached by at least 90% of seeds 1-40 when the
// list was made (scenarioExpect), so that missing it in all of
// ExpectMinRuns runs has a chance below 1e-10 (1e-6 for a true rate of
// 75%, about the lower bound of what 36 of 40 says).
// A campaign with at least ExpectMinRuns runs of the scenario fails when one
// is never reached: the path behind it stopped running. The global required
// probes are judged only at CoverageMinRuns runs of every scenario; this
// judges each scenario at a size campaigns actually run. A red-team bug that
// dropped the commit index from the Raft log's HardState broke no invariant
// (a restarted node then withholds its HWM instead of lowering it) and showed
// only here: pipelined-applied-wal-rebuilt fell from 34 of 40
// pipelined-crashes runs to none.
func ExpectedProbes(scenario string) []string { return scenarioExpect[scenario] }

// MissingExpected returns the expected probes of scenario that none of its
// runs reached (probeRuns counts the runs that reached each probe), or nil
// when runs < ExpectMinRuns.
func MissingExpected(scenario string, runs int, probeRuns map[string]int) []string {
	if runs < ExpectMinRuns {
		return nil
	}
	var missing []string
	for _, p := range scenarioExpect[scenario] {
		if probeRuns[p] == 0 {
			missing = append(missing, p)
		}
	}
	return missing
}

// scenarioExpect lists each scenario's expected probes (ExpectedProbes):
// those reached by at least 36 of seeds 1-40 of the correct system
// (campaign -scenario S -seeds 40 -json, its "probes" counts). Regenerate
// the same way when a scenario or probe changes on purpose.
var scenarioExpect = map[string][]string{
	"calm":                      {"leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"corrupt":                   {"leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"crashes":                   {"crash", "leader-gate-open", "liveness-calm-load", "restart-recovering", "segment-rotated", "target-event-node", "trigger-armed", "trigger-fired", "trigger-fsync"},
	"default":                   {"leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"double-failover":           {"crash", "indeterminate-retry", "leader-crash-with-unreplicated-batch", "leader-gate-open", "liveness-calm-load", "restart-recovering", "segment-rotated", "target-event-node", "target-leader", "trigger-armed", "trigger-become-leader", "trigger-fired"},
	"five":                      {"leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"fsync":                     {"crash", "fsync-eio", "fsync-failed-dropped", "fsync-stall", "indeterminate-retry", "leader-gate-open", "liveness-calm-load", "node-fail", "node-failstop", "restart-recovering", "segment-rotated", "target-event-node", "target-most-caught-up-follower", "trigger-armed", "trigger-fired", "trigger-term-change"},
	"gray":                      {"fsync-stall-log", "leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"last-replica":              {"crash", "indeterminate-retry", "leader-gate-open", "liveness-calm-load", "restart-recovering", "segment-rotated", "target-least-caught-up-follower", "target-most-caught-up-follower"},
	"legacy":                    {"leader-gate-open", "legacy-entry-applied", "liveness-calm-load", "segment-rotated"},
	"legacy-double-failover":    {"crash", "leader-crash-with-unreplicated-batch", "leader-gate-open", "legacy-entry-applied", "liveness-calm-load", "restart-recovering", "segment-rotated", "target-event-node", "target-leader", "trigger-armed", "trigger-become-leader", "trigger-fired"},
	"legacy-fsync":              {"crash", "fsync-eio", "fsync-failed-dropped", "fsync-stall", "indeterminate-retry", "leader-gate-open", "legacy-entry-applied", "liveness-calm-load", "node-fail", "node-failstop", "restart-recovering", "segment-rotated", "target-event-node", "target-most-caught-up-follower", "trigger-armed", "trigger-fired", "trigger-term-change"},
	"legacy-zombie":             {"crash", "indeterminate-retry", "leader-gate-open", "legacy-entry-applied", "link-quality", "liveness-calm-load", "partition", "partition-during-fsync", "restart-recovering", "segment-rotated", "target-event-node", "target-leader", "trigger-armed", "trigger-become-leader", "trigger-fired", "trigger-wal-write"},
	"overwrite":                 {"crash", "fsync-stall", "leader-crash-with-unreplicated-batch", "leader-gate-open", "link-quality", "liveness-calm-load", "restart-recovering", "segment-rotated", "target-follower", "target-leader", "trigger-armed", "trigger-fired", "trigger-wal-write"},
	"pipelined-calm":            {"leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"pipelined-corrupt":         {"leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"pipelined-crashes":         {"crash", "leader-gate-open", "liveness-calm-load", "pipelined-applied-wal-rebuilt", "restart-recovering", "segment-rotated", "target-event-node", "trigger-armed", "trigger-fired", "trigger-fsync"},
	"pipelined-double-failover": {"crash", "indeterminate-retry", "leader-crash-with-unreplicated-batch", "leader-gate-open", "liveness-calm-load", "restart-recovering", "segment-rotated", "target-event-node", "target-leader", "trigger-armed", "trigger-become-leader", "trigger-fired"},
	"pipelined-five":            {"leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"pipelined-fsync":           {"crash", "fsync-eio", "fsync-stall", "indeterminate-retry", "leader-gate-open", "liveness-calm-load", "node-fail", "node-failstop", "restart-recovering", "segment-rotated", "target-event-node", "target-most-caught-up-follower", "trigger-armed", "trigger-fired", "trigger-term-change"},
	"pipelined-gray":            {"fsync-stall-log", "leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"pipelined-last-replica":    {"crash", "indeterminate-retry", "leader-gate-open", "liveness-calm-load", "pipelined-applied-wal-rebuilt", "restart-recovering", "segment-rotated", "target-least-caught-up-follower", "target-most-caught-up-follower"},
	"pipelined-restart":         {"fsync-eio", "fsync-failed-dropped", "fsync-stall-log", "killed-read-unsynced", "leader-gate-open", "liveness-calm-load", "node-fail", "node-failstop", "pipelined-applied-before-wal-fsync", "pipelined-applied-wal-rebuilt", "pipelined-mixed-wal-batch", "process-killed", "restart-recovering", "segment-rotated", "target-event-node", "trigger-armed", "trigger-boot", "trigger-fired", "trigger-fsync", "trigger-wal-write"},
	"pipelined-overwrite":       {"crash", "fsync-stall", "leader-gate-open", "link-quality", "liveness-calm-load", "restart-recovering", "segment-rotated", "target-follower", "target-leader", "trigger-armed", "trigger-fired", "trigger-wal-write"},
	"pipelined-stepdown":        {"fsync-stall", "leader-gate-open", "liveness-calm-load", "segment-rotated", "target-leader", "target-most-caught-up-follower"},
	"pipelined-zombie":          {"crash", "indeterminate-retry", "leader-gate-open", "link-quality", "liveness-calm-load", "partition", "restart-recovering", "segment-rotated", "target-event-node", "target-leader", "trigger-armed", "trigger-become-leader", "trigger-fired", "trigger-wal-write"},
	"pipelined":                 {"leader-gate-open", "liveness-calm-load", "segment-rotated"},
	"restart":                   {"fsync-eio", "fsync-failed-dropped", "fsync-stall-log", "killed-read-unsynced", "leader-gate-open", "liveness-calm-load", "node-fail", "node-failstop", "process-killed", "restart-recovering", "segment-rotated", "target-event-node", "trigger-armed", "trigger-boot", "trigger-fired", "trigger-fsync", "trigger-wal-write"},
	"stepdown":                  {"fsync-stall", "indeterminate-retry", "leader-gate-open", "liveness-calm-load", "segment-rotated", "target-leader", "target-most-caught-up-follower"},
	"standalone":                {"liveness-calm-load"},
	"zombie":                    {"crash", "indeterminate-retry", "leader-gate-open", "link-quality", "liveness-calm-load", "partition", "restart-recovering", "segment-rotated", "target-event-node", "target-leader", "trigger-armed", "trigger-become-leader", "trigger-fired", "trigger-wal-write"},
}
