package scenarios

import (
	"testing"

	"walraft/core/node"
)

// TestPathTwins: a twin (pipelined or legacy) draws its original's
// options for the same seed and only switches the path, so that a
// difference between the two runs of a seed is the path's doing.
func TestPathTwins(t *testing.T) {
	type twin struct {
		name, of string
		path     node.Path
	}
	var twins []twin
	for _, tw := range pipelinedTwins {
		twins = append(twins, twin{tw.name, tw.of, node.PathPipelined})
	}
	for _, tw := range legacyTwins {
		twins = append(twins, twin{tw.name, tw.of, node.PathLegacy})
	}
	for _, tw := range twins {
		sc, err := Lookup(tw.name)
		if err != nil {
			t.Fatal(err)
		}
		of, _ := Lookup(tw.of)
		for _, seed := range []uint64{1, 7} {
			a, b := sc.Draw(seed), of.Draw(seed)
			if a.Path != tw.path || b.Path != node.PathBatch {
				t.Fatalf("%s seed %d: paths %v and %v, want %v and batch", tw.name, seed, a.Path, b.Path, tw.path)
			}
			a.Scenario, a.Path = b.Scenario, b.Path
			if a.Describe() != b.Describe() {
				t.Fatalf("%s seed %d draws other options than %s:\n%s\nvs\n%s", tw.name, seed, tw.of, a.Describe(), b.Describe())
			}
		}
	}
}

// TestPipelinedVariantsNeedThePath: the pipelined path's planted bugs are
// harmless on the batch path (there the WAL fsync precedes the proposal),
// so the seed that catches each on its pipelined scenario passes on the
// batch original of that scenario, same options and faults, same bug.
// Together with TestVariantsCaught this shows the catch is about the
// pipelined path's own rules. The catching seed is found as there
// (findCatch: the known seed, or the first catch with WALRAFT_LONG).
func TestPipelinedVariantsNeedThePath(t *testing.T) {
	originals := map[string]string{}
	for _, tw := range pipelinedTwins {
		originals[tw.name] = tw.of
	}
	for _, name := range []string{"pipelined-definite-eio", "pipelined-no-rebuild"} {
		t.Run(name, func(t *testing.T) {
			v, err := LookupVariant(name)
			if err != nil {
				t.Fatal(err)
			}
			c := findCatch(t, v)
			if c.seed == 0 {
				t.Fatalf("%s not caught in seeds 1..%d of %s", name, variantSeedCap, v.Scenario)
			}
			of, err := Lookup(originals[v.Scenario])
			if err != nil {
				t.Fatalf("%s: scenario %s is not a pipelined twin", name, v.Scenario)
			}
			if res := mustRun(t, of.Draw(c.seed), RunConfig{Variant: name}); !res.OK() {
				t.Fatalf("%s also fails seed %d of the batch-path %s (%v): it is not specific to the pipelined path:\n%s",
					name, c.seed, of.Name, res.Invariants(), res.Report.String())
			}
			t.Logf("caught by seed %d of %s (%v); the same seed of %s passes with the same bug", c.seed, v.Scenario, c.invariants, of.Name)
		})
	}
}
