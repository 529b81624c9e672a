package scenarios

import (
	"fmt"
	"strings"

	"walraft/core/node"
)

// Variant is a known-bad version of the system (DESIGN.md section 6): a
// deliberate bug the harness must catch. The harness proves it can fail by
// catching each one within a bounded number of seeds.
type Variant struct {
	Name    string
	Summary string
	// Scenario is the scenario in which the variant is expected to be
	// caught (its bug needs the faults of that scenario to show).
	Scenario string
	bugs     node.Bugs
}

var variants = []Variant{
	{Name: "metadata-only", Summary: "Raft entries carry offsets but no records (the original note's design): followers never hold the bytes",
		Scenario: "default", bugs: node.Bugs{MetadataOnly: true}},
	{Name: "ack-before-fsync", Summary: "acks=1 is answered when the write is queued, before its fsync",
		Scenario: "default", bugs: node.Bugs{AckBeforeFsync: true}},
	{Name: "notice-before-fsync", Summary: "a batch is proposed to Raft when appended, before its fsync completes",
		Scenario: "fsync", bugs: node.Bugs{NoticeBeforeFsync: true}},
	{Name: "hwm-before-commit", Summary: "the leader moves the HWM when it proposes, before the entry commits",
		Scenario: "default", bugs: node.Bugs{HWMBeforeCommit: true}},
	{Name: "no-truncate", Summary: "a new leader keeps its uncommitted local suffix; applying keeps whatever the log holds",
		Scenario: "default", bugs: node.Bugs{NoTruncateOnLeaderChange: true}},
	{Name: "waiter-by-index", Summary: "acks=-1 waiters are resolved by whatever entry applies at their index",
		Scenario: "default", bugs: node.Bugs{WaiterByIndexOnly: true}},
	{Name: "memory-raft-log", Summary: "the Raft log (HardState and entries) is kept in memory only",
		Scenario: "crashes", bugs: node.Bugs{InMemoryRaftLog: true}},
	{Name: "pipelined-definite-eio", Summary: "pipelined path: a WAL fsync error after the proposal is answered as a definite failure, though the entry may commit",
		Scenario: "pipelined-fsync", bugs: node.Bugs{PipelinedDefiniteFsyncError: true}},
	{Name: "pipelined-no-rebuild", Summary: "pipelined path: a node never rewrites its own batches when applying them, trusting its WAL to hold them, so a WAL suffix lost in a crash is not rebuilt from the Raft log",
		Scenario: "pipelined-crashes", bugs: node.Bugs{TrustOwnBatches: true}},
}

// Variants returns the known-bad variants in catalogue order.
func Variants() []Variant { return append([]Variant(nil), variants...) }

// LookupVariant finds a variant by name; "" is the correct system.
func LookupVariant(name string) (Variant, error) {
	if name == "" {
		return Variant{}, nil
	}
	var names []string
	for _, v := range variants {
		if v.Name == name {
			return v, nil
		}
		names = append(names, v.Name)
	}
	return Variant{}, fmt.Errorf("unknown variant %q (known: %s)", name, strings.Join(names, ", "))
}
