package scenarios

// LostOps returns the successful produces (acks 1 and -1) whose records are
// missing from the final log of the node with the highest HWM, by op id:
// the ops a report marks "lost" (whether each loss is allowed is the
// checkers' business: acks=1 loss through a leader change is).
func LostOps(h *History) map[OpID]bool { return lostOps(h) }

// RapidScenario is the scenario name of runs whose options the rapid
// properties drew (property_test.go); their case files replay like any
// other.
const RapidScenario = "rapid"

// KnownScenario reports an error naming the known scenarios when name is
// neither one of them nor RapidScenario: a case file whose scenario was
// mistyped or edited is refused rather than replayed under a label that
// means nothing.
func KnownScenario(name string) error {
	if name == RapidScenario {
		return nil
	}
	_, err := Lookup(name)
	return err
}
