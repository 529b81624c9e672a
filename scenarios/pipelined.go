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
}

func init() {
	for _, tw := range pipelinedTwins {
		of, err := Lookup(tw.of)
		if err != nil {
			panic("scenarios: pipelined twin of " + tw.of + ": " + err.Error())
		}
		draw := of.draw
		if sk, ok := simKindsByScenario[tw.of]; ok {
			simKindsByScenario[tw.name] = sk // the twin draws its original's disk, clock and link faults too
		}
		catalogue = append(catalogue, Scenario{
			Name:    tw.name,
			Summary: "the " + tw.of + " scenario on the pipelined path (the batch is proposed while its WAL fsync runs)",
			draw: func(o *Options, rng *sim.Rand) {
				draw(o, rng)
				o.Path = node.PathPipelined
			},
			plan: of.plan,
		})
	}
}
