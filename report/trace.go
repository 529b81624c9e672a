package report

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"walraft/scenarios"
	"walraft/sim"
)

// addTrace derives lane shadings, role changes and durable-end series from
// the full trace, and HWM, log end and committed end from the history's
// observations.
func (d *Data) addTrace(trace []sim.TraceEvent, end time.Duration) {
	type key struct {
		node uint64
		what string
	}
	open := map[key]State{}
	var netOpen *State
	closeState := func(k key, t time.Duration) {
		if s, ok := open[k]; ok {
			s.ToUS = us(t)
			if s.ToUS > s.FromUS || s.What != "down" {
				d.States = append(d.States, s)
			}
			delete(open, k)
		}
	}
	openState := func(n uint64, what, text string, t time.Duration) {
		k := key{n, what}
		closeState(k, t)
		open[k] = State{Node: n, FromUS: us(t), What: what, Text: text}
	}
	durable := map[string]*Series{}
	series := func(n uint64, part, what string) *Series {
		k := fmt.Sprintf("%d %s %s", n, part, what)
		s := durable[k]
		if s == nil {
			s = &Series{Node: n, Part: part, What: what}
			durable[k] = s
		}
		return s
	}
	point := func(s *Series, t time.Duration, v int64) {
		if k := len(s.Points); k > 0 && s.Points[k-1][1] == v {
			return
		}
		s.Points = append(s.Points, [2]int64{us(t), v})
	}
	for _, e := range trace {
		n := e.Node
		switch e.Kind {
		case "proc.crash", "proc.kill":
			closeState(key{n, "failed"}, e.At)
			closeState(key{n, "recovering"}, e.At)
			closeState(key{n, "paused"}, e.At)
			why := "crashed"
			if e.Kind == "proc.kill" {
				why = "killed (page cache kept)"
			}
			openState(n, "down", why, e.At)
			d.Roles = append(d.Roles, [5]int64{us(e.At), int64(n), -1, 0, 0})
		case "proc.boot":
			closeState(key{n, "down"}, e.At)
			closeState(key{n, "failed"}, e.At)
		case "proc.pause":
			openState(n, "paused", "paused", e.At)
		case "proc.resume":
			closeState(key{n, "paused"}, e.At)
		case "node.fail":
			openState(n, "failed", "fail-stop (WAL or Raft log error)", e.At)
		case "node.recovering":
			openState(n, "recovering", "recovering (Fetch answers ErrRecovering)", e.At)
		case "node.recovered", "node.recover.cut":
			closeState(key{n, "recovering"}, e.At)
		case "clock.rate":
			closeState(key{n, "skew"}, e.At)
			if e.A != 1_000_000 {
				openState(n, "skew", "clock rate "+strconv.FormatInt(e.A, 10)+" ppm", e.At)
			}
		case "raft.role":
			d.Roles = append(d.Roles, [5]int64{us(e.At), int64(n), e.A, e.C, e.B})
		case "net.partition", "net.bridge", "net.cut", "net.isolate":
			text := e.Kind
			switch e.Kind {
			case "net.partition", "net.bridge":
				text += " " + e.Text
			case "net.cut":
				text += fmt.Sprintf(" n%d->n%d", e.A, e.B)
			case "net.isolate":
				text += fmt.Sprintf(" n%d", e.A)
			}
			if netOpen != nil {
				netOpen.ToUS = us(e.At)
				d.States = append(d.States, *netOpen)
				if e.Kind == "net.cut" || e.Kind == "net.isolate" {
					text = netOpen.Text + "; " + text
				}
			}
			netOpen = &State{Node: 0, FromUS: us(e.At), What: "net", Text: text}
		case "net.heal":
			if netOpen != nil {
				netOpen.ToUS = us(e.At)
				d.States = append(d.States, *netOpen)
				netOpen = nil
			}
		case "wal.sync.done":
			point(series(n, e.Text+"/"+strconv.FormatInt(e.A, 10), "durable_end"), e.At, e.C+1)
		case "wal.open":
			point(series(n, e.Text+"/"+strconv.FormatInt(e.A, 10), "durable_end"), e.At, e.C)
		case "wal.bgsync.done":
			point(series(n, e.Text+"/"+strconv.FormatInt(e.A, 10), "durable_end"), e.At, e.B)
		case "wal.trunc":
			s := series(n, e.Text+"/"+strconv.FormatInt(e.A, 10), "durable_end")
			if k := len(s.Points); k > 0 && s.Points[k-1][1] > e.B {
				point(s, e.At, e.B)
			}
		}
	}
	for _, s := range open {
		s.ToUS = us(end)
		d.States = append(d.States, s)
	}
	if netOpen != nil {
		netOpen.ToUS = us(end)
		d.States = append(d.States, *netOpen)
	}
	slices.SortStableFunc(d.States, func(a, b State) int {
		if a.FromUS != b.FromUS {
			return int(a.FromUS - b.FromUS)
		}
		if a.Node != b.Node {
			return int(a.Node) - int(b.Node)
		}
		return cmpString(a.What, b.What)
	})
	keys := make([]string, 0, len(durable))
	for k := range durable {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		d.Series = append(d.Series, *durable[k])
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// addOps adds the client operations (at most MaxOps, nearest the focus)
// and the HWM, log end and committed end series from the observations.
func (d *Data) addOps(h *scenarios.History, f Focus) {
	if h == nil {
		return
	}
	lost := scenarios.LostOps(h)
	type key struct {
		node uint64
		part string
		what string
	}
	idx := map[key]int{}
	var obs []Series
	add := func(n uint64, part, what string, t time.Duration, v int64) {
		k := key{n, part, what}
		i, ok := idx[k]
		if !ok {
			i = len(obs)
			idx[k] = i
			obs = append(obs, Series{Node: n, Part: part, What: what})
		}
		s := &obs[i]
		if m := len(s.Points); m > 0 && s.Points[m-1][1] == v {
			return
		}
		s.Points = append(s.Points, [2]int64{us(t), v})
	}
	committed := map[string]int64{}
	for _, o := range h.Obs {
		for _, p := range o.Parts {
			part := p.Topic + "/" + strconv.Itoa(int(p.Partition))
			add(uint64(o.Node), part, "hwm", o.Time, p.HWM)
			add(uint64(o.Node), part, "log_end", o.Time, p.LogEnd)
			if p.HWM > committed[part] {
				committed[part] = p.HWM
				add(0, part, "committed_end", o.Time, p.HWM)
			}
		}
	}
	d.Series = append(obs, d.Series...)
	ops := make([]OpJSON, 0, len(h.Ops))
	for i := range h.Ops {
		o := &h.Ops[i]
		done := int64(-1)
		if o.Complete > 0 {
			done = us(o.Complete)
		}
		ops = append(ops, OpJSON{ID: int64(o.ID), Client: o.Client, Node: uint64(o.Node), Kind: string(o.Kind), Acks: o.Acks,
			Part: o.Topic + "/" + strconv.Itoa(int(o.Partition)), InvokeUS: us(o.Invoke), DoneUS: done,
			Outcome: string(o.Outcome), Lost: lost[o.ID], Offset: o.Offset, N: len(o.Payloads), Err: o.Err})
	}
	d.OpsTotal = len(ops)
	if len(ops) > MaxOps {
		c := us(f.Center)
		focus := map[int64]bool{}
		for _, id := range f.Ops {
			focus[int64(id)] = true
		}
		slices.SortStableFunc(ops, func(a, b OpJSON) int {
			if focus[a.ID] != focus[b.ID] {
				if focus[a.ID] {
					return -1
				}
				return 1
			}
			return int(abs(a.InvokeUS-c) - abs(b.InvokeUS-c))
		})
		ops = ops[:MaxOps]
		slices.SortStableFunc(ops, func(a, b OpJSON) int { return int(a.ID - b.ID) })
	}
	d.Ops = ops
}
