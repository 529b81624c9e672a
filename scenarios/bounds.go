package scenarios

import (
	"fmt"
	"time"
)

// MaxOfferedBytes bounds OfferedBytes for a case file's options: about
// three times the most any scenario draws (the five-node scenario reaches
// about 5.6 GiB over 300 seeds), so a drawn run always replays and a
// hand-edited one cannot ask for a run whose records, copied to every node,
// grow memory without bound (a replay of an edited case once grew past
// 3 GB; an edit to 10,000 producers for an hour asks for petabytes).
const MaxOfferedBytes = 16 << 30

// OfferedBytes is an upper bound on the record bytes a run's clients can
// offer, stored once per node: every producer sends at most one request per
// think time plus a round trip (at least 1 ms), each of at most MaxBatchRecs
// records of MsgMax bytes, for the safety and liveness phases. The system
// accepts less than it is offered, so the real footprint is lower; the
// bound is what can be checked before the run.
func OfferedBytes(o Options) float64 {
	cycle := max(o.ThinkMin+2*o.ClientLatency, time.Millisecond)
	requests := float64(o.SafetyDuration+o.LivenessDuration) / float64(cycle)
	return float64(o.Producers) * requests * float64(o.MaxBatchRecs) * float64(o.MsgMax) * float64(max(o.Nodes, 1))
}

// checkOfferedLoad refuses options whose OfferedBytes exceed
// MaxOfferedBytes, naming the options that set it.
func checkOfferedLoad(o Options) error {
	if b := OfferedBytes(o); b > MaxOfferedBytes {
		return fmt.Errorf("the workload could offer %.1f GiB of records across %d nodes (at most %d GiB): "+
			"%d producers x (%v + %v) / (think %v + 2 x client latency %v, at least 1ms) x %d records x %d bytes; lower one of them",
			b/(1<<30), o.Nodes, MaxOfferedBytes>>30, o.Producers, o.SafetyDuration, o.LivenessDuration, o.ThinkMin, o.ClientLatency, o.MaxBatchRecs, o.MsgMax)
	}
	return nil
}
