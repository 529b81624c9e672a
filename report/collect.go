// Package report turns one case (a failing run) into a picture: a second,
// deterministic pass over the case records the full trace, every network
// message (through the simulator's network tap) and the client history,
// and Render writes one self-contained HTML file with a space-time diagram,
// step lines of each node's HWM, committed, log and durable ends, the
// client operations coloured by outcome, and the violation in focus.
//
// Nothing here knows the list of invariants or fault kinds: a fault is drawn
// from its JSON and its String(), an invariant by its name, so new kinds
// and invariants render without a change here.
package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"walraft/scenarios"
	"walraft/sim"
)

// MaxMsgs bounds the message arrows a report keeps, so a long run cannot
// make the HTML file (and the browser) grow without bound; past it the
// report keeps the messages nearest the focus and says so.
const MaxMsgs = 200_000

// MaxOps bounds the client operations a report keeps, the same way.
const MaxOps = 100_000

// Data is everything a report shows, in the shape the page's script reads
// (times in microseconds of simulated time).
type Data struct {
	Title     string   `json:"title"`
	CaseFile  string   `json:"case_file"`
	Scenario  string   `json:"scenario"`
	Seed      uint64   `json:"seed"`
	Variant   string   `json:"variant"`
	Commit    string   `json:"commit"`
	Build     string   `json:"build"`
	TraceHash string   `json:"trace_hash"`
	CaseHash  string   `json:"case_hash"`
	Replay    []string `json:"replay"`
	EndUS     int64    `json:"end_us"`
	Nodes     []uint64 `json:"nodes"`

	Options  json.RawMessage `json:"options"`
	Schedule []FaultBand     `json:"schedule"`
	Verdicts []Verdict       `json:"verdicts"`
	Viols    []Viol          `json:"violations"`
	Focus    FocusJSON       `json:"focus"`

	// MsgKinds names the message kinds; Msgs refer to them by index.
	MsgKinds []string `json:"msg_kinds"`
	// Msgs are [send_us, recv_us (-1: lost), from, to, kind, term, index,
	// entries, flags (1 dropped, 2 duplicate, 4 reject), drop reason index].
	Msgs      [][10]int64 `json:"msgs"`
	MsgsTotal int         `json:"msgs_total"`
	Drops     []string    `json:"drop_reasons"`

	// States are lane shadings: down, paused, failed (fail-stop),
	// recovering, and network cuts.
	States []State `json:"states"`
	// Roles are role changes: [t_us, node, role, term, leader].
	Roles    [][5]int64 `json:"roles"`
	RoleName []string   `json:"role_names"`

	// Series are per node and partition step lines.
	Series []Series `json:"series"`

	Ops      []OpJSON `json:"ops"`
	OpsTotal int      `json:"ops_total"`

	// Legend documents every trace event kind (walraft help trace).
	Legend []LegendEntry `json:"legend"`
}

// FaultBand is one fault of the schedule: its JSON fields as written in the
// case file, its one-line text, and the time range it covers.
type FaultBand struct {
	Index   int            `json:"i"`
	FromUS  int64          `json:"from_us"`
	ToUS    int64          `json:"to_us"`
	Kind    string         `json:"kind"`
	Node    uint64         `json:"node"`
	Text    string         `json:"text"`
	Fields  map[string]any `json:"fields"`
	InFocus bool           `json:"focus"`
}

// Verdict is one invariant's verdict.
type Verdict struct {
	Invariant string `json:"invariant"`
	Verdict   string `json:"verdict"`
}

// Viol is one violation.
type Viol struct {
	Invariant string  `json:"invariant"`
	AtUS      int64   `json:"at_us"`
	Detail    string  `json:"detail"`
	Ops       []int64 `json:"ops"`
}

// FocusJSON is Focus for the page.
type FocusJSON struct {
	FromUS      int64    `json:"from_us"`
	ToUS        int64    `json:"to_us"`
	CenterUS    int64    `json:"center_us"`
	ViolationUS int64    `json:"violation_us"`
	Label       string   `json:"label"`
	Invariant   string   `json:"invariant"`
	Ops         []int64  `json:"ops"`
	Faults      []int    `json:"faults"`
	Evidence    []string `json:"evidence"`
	// KeptByMinimize: the faults in focus are a minimized schedule's.
	KeptByMinimize bool `json:"kept_by_minimize"`
}

// State is a stretch of a lane: [from_us, to_us) of node in state What.
type State struct {
	Node   uint64 `json:"node"`
	FromUS int64  `json:"from_us"`
	ToUS   int64  `json:"to_us"`
	What   string `json:"what"`
	Text   string `json:"text,omitempty"`
}

// Series is one step line: Points are [t_us, value].
type Series struct {
	Node   uint64     `json:"node"` // 0: cluster-wide
	Part   string     `json:"part"`
	What   string     `json:"what"` // hwm, log_end, durable_end, committed_end
	Points [][2]int64 `json:"points"`
}

// OpJSON is one client operation.
type OpJSON struct {
	ID       int64  `json:"id"`
	Client   uint64 `json:"client"`
	Node     uint64 `json:"node"`
	Kind     string `json:"kind"`
	Acks     int8   `json:"acks"`
	Part     string `json:"part"`
	InvokeUS int64  `json:"t0"`
	DoneUS   int64  `json:"t1"` // -1: never answered
	Outcome  string `json:"outcome"`
	Lost     bool   `json:"lost,omitempty"`
	Offset   int64  `json:"off"`
	N        int    `json:"n"`
	Err      string `json:"err,omitempty"`
}

// LegendEntry documents one trace event kind.
type LegendEntry struct {
	Kind   string `json:"kind"`
	Fields string `json:"fields"`
}

// RunFunc runs one simulation (scenarios.Run's signature).
type RunFunc func(scenarios.Options, scenarios.RunConfig) (*scenarios.Result, error)

// Collected is the outcome of the report's pass over a case.
type Collected struct {
	Data   *Data
	Result *scenarios.Result
	Focus  Focus
}

// Collect re-runs the case (its options, variant and schedule) recording
// everything the report draws, finds the focus with sel, and returns the
// report's data. build is this binary's commit, casePath the case file's
// name as the user gave it. The run is the case's run exactly when the
// trace hash matches (Data.TraceHash == Data.CaseHash).
//
// run runs the simulation (nil: scenarios.Run; the CLI's tests substitute
// a fake).
func Collect(run RunFunc, c *scenarios.Case, casePath, build string, sel Select) (*Collected, error) {
	if run == nil {
		run = scenarios.Run
	}
	var msgs []rawMsg
	tap := func(e sim.MsgEvent) { msgs = append(msgs, decodeMsg(e)) }
	rc := scenarios.RunConfig{Variant: c.Variant, Schedule: c.Schedule, UseSchedule: true, RecordTrace: true, NetTap: tap}
	res, err := run(c.Options, rc)
	if err != nil {
		return nil, err
	}
	sel.Minimized = sel.Minimized || Minimized(c)
	f, err := FindFocus(res, c.Violations, sel)
	if err != nil {
		return nil, err
	}
	d := &Data{
		Title:     fmt.Sprintf("walraft: %s seed %d %s", c.Scenario, c.Seed, variantLabel(c.Variant)),
		CaseFile:  casePath,
		Scenario:  c.Scenario,
		Seed:      c.Seed,
		Variant:   variantLabel(c.Variant),
		Commit:    c.Commit,
		Build:     build,
		TraceHash: scenarios.FormatTraceHash(res.TraceHash),
		CaseHash:  c.TraceHash,
		Replay: []string{
			"go build -o walraft ./cmd/walraft",
			"./walraft replay " + casePath,
			"./walraft report " + casePath,
		},
		EndUS:    us(res.SimTime),
		RoleName: []string{"follower", "candidate", "leader", "pre-candidate"},
		Legend:   Legend(),
	}
	for i := 1; i <= res.Options.Nodes; i++ {
		d.Nodes = append(d.Nodes, uint64(i))
	}
	if d.Options, err = json.Marshal(res.Options); err != nil {
		return nil, err
	}
	d.Schedule = faultBands(res.Schedule, f, res.SimTime)
	d.Verdicts = verdicts(res)
	for _, v := range res.Violations {
		vv := Viol{Invariant: v.Invariant, AtUS: us(v.Time), Detail: v.Detail}
		for _, id := range v.Ops {
			vv.Ops = append(vv.Ops, int64(id))
		}
		d.Viols = append(d.Viols, vv)
	}
	d.Focus = FocusJSON{FromUS: us(f.From), ToUS: us(f.To), CenterUS: us(f.Center), ViolationUS: us(f.ViolationAt),
		Label: f.Label, Invariant: f.Invariant, Faults: f.Faults, Evidence: f.Evidence, KeptByMinimize: f.KeptByMinimize}
	for _, id := range f.Ops {
		d.Focus.Ops = append(d.Focus.Ops, int64(id))
	}
	d.addMsgs(msgs, f)
	d.addTrace(res.Trace, res.SimTime)
	d.addOps(res.History, f)
	d.fillEmpty()
	return &Collected{Data: d, Result: res, Focus: f}, nil
}

// fillEmpty turns every nil list of d into an empty one, so the page's
// JSON holds [] and never null: a run with no faults has no lane states,
// no drop reasons and no faults in focus, and the page's script iterates
// over each of them.
func (d *Data) fillEmpty() {
	orEmpty(&d.Replay)
	orEmpty(&d.Nodes)
	orEmpty(&d.Schedule)
	orEmpty(&d.Verdicts)
	orEmpty(&d.Viols)
	orEmpty(&d.Focus.Ops)
	orEmpty(&d.Focus.Faults)
	orEmpty(&d.Focus.Evidence)
	orEmpty(&d.MsgKinds)
	orEmpty(&d.Msgs)
	orEmpty(&d.Drops)
	orEmpty(&d.States)
	orEmpty(&d.Roles)
	orEmpty(&d.RoleName)
	orEmpty(&d.Series)
	orEmpty(&d.Ops)
	orEmpty(&d.Legend)
	for i := range d.Series {
		orEmpty(&d.Series[i].Points)
	}
	for i := range d.Viols {
		orEmpty(&d.Viols[i].Ops)
	}
}

func orEmpty[T any](s *[]T) {
	if *s == nil {
		*s = []T{}
	}
}

func variantLabel(v string) string {
	if v == "" {
		return "correct"
	}
	return v
}

func us(d time.Duration) int64 { return int64(d / time.Microsecond) }

// faultBands renders the schedule generically: every fault's JSON fields,
// its String(), and [At, At+Dur] (a fault without a duration is an
// instant).
func faultBands(s scenarios.Schedule, f Focus, end time.Duration) []FaultBand {
	out := make([]FaultBand, 0, len(s))
	for i, x := range s {
		fields := map[string]any{}
		if b, err := json.Marshal(x); err == nil {
			_ = json.Unmarshal(b, &fields)
		}
		to := x.At + x.Dur
		if to > end && end > 0 {
			to = end
		}
		out = append(out, FaultBand{Index: i, FromUS: us(x.At), ToUS: us(to), Kind: string(x.Kind), Node: x.Node,
			Text: trimLeft(x.String()), Fields: fields, InFocus: slices.Contains(f.Faults, i)})
	}
	return out
}

func trimLeft(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	return s
}

func verdicts(res *scenarios.Result) []Verdict {
	var out []Verdict
	seen := map[string]bool{}
	for _, v := range res.Report.Verdicts {
		seen[v.Invariant] = true
		out = append(out, Verdict{Invariant: v.Invariant, Verdict: fmt.Sprint(v.Verdict)})
	}
	// Violations the harness adds itself (PANIC, and any invariant a
	// checker outside Check reports) have no verdict entry: list them.
	for _, v := range res.Violations {
		if !seen[v.Invariant] {
			seen[v.Invariant] = true
			out = append(out, Verdict{Invariant: v.Invariant, Verdict: string(scenarios.VerdictViolated)})
		}
	}
	return out
}

// rawMsg is one tapped message operation, decoded.
type rawMsg struct {
	at       time.Duration
	op       sim.MsgOp
	from, to uint64
	id       int64
	why      sim.DropReason
	kind     string
	term     uint64
	index    uint64
	ents     int
	reject   bool
}

// decodeMsg decodes a tapped message as a Raft message; bytes that do not
// decode are kind "bytes" (the report still draws the arrow).
func decodeMsg(e sim.MsgEvent) rawMsg {
	r := rawMsg{at: e.At, op: e.Op, from: e.From, to: e.To, id: e.ID, why: e.Why, kind: "bytes"}
	var m pb.Message
	if err := proto.Unmarshal(e.Msg, &m); err == nil {
		r.kind = m.GetType().String()
		r.term, r.index, r.ents, r.reject = m.GetTerm(), m.GetIndex(), len(m.Entries), m.GetReject()
	}
	return r
}

// addMsgs pairs sends with deliveries by delivery id and keeps at most
// MaxMsgs, nearest the focus first.
func (d *Data) addMsgs(raw []rawMsg, f Focus) {
	kinds := map[string]int64{}
	kind := func(k string) int64 {
		if i, ok := kinds[k]; ok {
			return i
		}
		kinds[k] = int64(len(d.MsgKinds))
		d.MsgKinds = append(d.MsgKinds, k)
		return kinds[k]
	}
	reasons := map[sim.DropReason]int64{}
	reason := func(r sim.DropReason) int64 {
		if i, ok := reasons[r]; ok {
			return i
		}
		reasons[r] = int64(len(d.Drops))
		d.Drops = append(d.Drops, r.String())
		return reasons[r]
	}
	byID := map[int64]int{}
	var out [][10]int64
	for _, m := range raw {
		switch m.op {
		case sim.MsgSend, sim.MsgDup:
			var flags int64
			if m.op == sim.MsgDup {
				flags |= 2
			}
			if m.reject {
				flags |= 4
			}
			byID[m.id] = len(out)
			out = append(out, [10]int64{us(m.at), -1, int64(m.from), int64(m.to), kind(m.kind), int64(m.term), int64(m.index), int64(m.ents), flags, -1})
		case sim.MsgDeliver:
			if i, ok := byID[m.id]; ok {
				out[i][1] = us(m.at)
				delete(byID, m.id)
			}
		case sim.MsgDrop:
			if i, ok := byID[m.id]; ok && m.id != 0 {
				out[i][8] |= 1
				out[i][9] = reason(m.why)
				delete(byID, m.id)
				continue
			}
			var flags int64 = 1
			if m.reject {
				flags |= 4
			}
			out = append(out, [10]int64{us(m.at), -1, int64(m.from), int64(m.to), kind(m.kind), int64(m.term), int64(m.index), int64(m.ents), flags, reason(m.why)})
		}
	}
	d.MsgsTotal = len(out)
	if len(out) > MaxMsgs {
		c := us(f.Center)
		sort.SliceStable(out, func(i, j int) bool { return abs(out[i][0]-c) < abs(out[j][0]-c) })
		out = out[:MaxMsgs]
		sort.SliceStable(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	}
	d.Msgs = out
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
