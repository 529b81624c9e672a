package scenarios

import (
	"testing"
)

// TestSwarmScenario: a swarm seed is a seed of the scenario it draws (same
// options, so `run -scenario X -seed N` replays it), the draw is a function
// of the seed, and a few hundred seeds reach every scenario of the
// catalogue, so a campaign that names no scenario covers every path and
// plan.
func TestSwarmScenario(t *testing.T) {
	sw, err := Lookup(SwarmScenario)
	if err != nil || !sw.IsSwarm() {
		t.Fatalf("Lookup(%q) = %v, %v", SwarmScenario, sw.Name, err)
	}
	if DefaultScenario != SwarmScenario {
		t.Fatalf("DefaultScenario is %q: campaigns that name no scenario should draw among all of them", DefaultScenario)
	}
	for _, sc := range Scenarios() {
		if sc.IsSwarm() || sc.For(7).Name != sc.Name {
			t.Fatalf("concrete scenario %s: For(7) = %s", sc.Name, sc.For(7).Name)
		}
	}
	seen := map[string]int{}
	for seed := uint64(1); seed <= 400; seed++ {
		sc := sw.For(seed)
		if sc.IsSwarm() {
			t.Fatalf("seed %d: the swarm drew itself", seed)
		}
		if again := sw.For(seed); again.Name != sc.Name {
			t.Fatalf("seed %d: drew %s, then %s", seed, sc.Name, again.Name)
		}
		seen[sc.Name]++
		if seed <= 20 {
			a, b := sw.Draw(seed), sc.Draw(seed)
			if a.Scenario != sc.Name || a.Describe() != b.Describe() {
				t.Fatalf("swarm seed %d draws other options than %s seed %d:\n%s\nvs\n%s", seed, sc.Name, seed, a.Describe(), b.Describe())
			}
		}
	}
	for _, sc := range Scenarios() {
		if seen[sc.Name] == 0 {
			t.Errorf("400 swarm seeds never drew %s", sc.Name)
		}
	}
}
