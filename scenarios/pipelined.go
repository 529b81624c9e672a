package scenarios

import (
	"walraft/core/node"
	"walraft/sim"
)

// pipelinedTwins are the scenarios rerun on the pipelined produce path
// (node.PathPipelined): every invariant, probe and variant of the original
// runs on it too. A twin draws exactly the options of its original for the
// same seed, then switches the path, so "pipelined seed 7" and "default
// seed 7" differ only in the path: a failure on one and not the other is
// the path's doing.
var pipelinedTwins = []struct{ name, of string }{
	{"pipelined", "default"},
	{"pipelined-five", "five"},
	{"pipelined-crashes", "crashes"},
	{"pipelined-fsync", "fsync"},
	{"pipelined-calm", "calm"},
	{"pipelined-gray", "gray"},
	{"pipelined-corrupt", "corrupt"},
	{"pipelined-zombie", "zombie"},
	{"pipelined-double-failover", "double-failover"},
	{"pipelined-last-replica", "last-replica"},
	{"pipelined-stepdown", "stepdown"},
	{"pipelined-overwrite", "overwrite"},
	{"pipelined-restart", "restart"},
}

// legacyTwins are the targeted scenarios rerun on the legacy per-record
// path (node.PathLegacy), whose own scenario ("legacy") draws only the
// swarm: a deposed legacy leader whose entries go stale while it still
// holds waiters, or a legacy node crashed right after it leads, is reached
// only through these plans. Like the pipelined twins, each draws exactly
// its original's options for a seed and only switches the path.
var legacyTwins = []struct{ name, of string }{
	{"legacy-zombie", "zombie"},
	{"legacy-double-failover", "double-failover"},
	{"legacy-fsync", "fsync"},
}

func init() {
	for _, tw := range pipelinedTwins {
		addTwin(tw.name, tw.of, node.PathPipelined, "the "+tw.of+" scenario on the pipelined path (the batch is proposed while its WAL fsync runs)")
	}
	for _, tw := range legacyTwins {
		addTwin(tw.name, tw.of, node.PathLegacy, "the "+tw.of+" scenario on the legacy per-record path")
	}
}

// addTwin adds the scenario name: of's draw and plan, then path.
func addTwin(name, of string, path node.Path, summary string) {
	orig, err := Lookup(of)
	if err != nil {
		panic("scenarios: twin " + name + " of " + of + ": " + err.Error())
	}
	draw := orig.draw
	if sk, ok := simKindsByScenario[of]; ok {
		simKindsByScenario[name] = sk // the twin draws its original's disk, clock and link faults too
	}
	catalogue = append(catalogue, Scenario{
		Name:    name,
		Summary: summary,
		draw: func(o *Options, rng *sim.Rand) {
			draw(o, rng)
			o.Path = path
		},
		plan:      orig.plan,
		optionsOf: of,
	})
}
