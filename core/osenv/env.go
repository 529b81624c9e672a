package osenv

import (
	"context"
	"log/slog"

	"walraft/core/env"
)

// NopTracer discards every event (it is env.NopTracer).
type NopTracer = env.NopTracer

// SlogTracer is an env.Tracer that logs each event to Logger at Debug level,
// stamped with the node and, when Clock is set, the node's clock reading.
// A nil Logger discards.
type SlogTracer struct {
	Logger *slog.Logger
	Node   env.NodeID
	Clock  env.Clock // optional
}

// NewSlogTracer returns a SlogTracer for node that logs to logger.
func NewSlogTracer(logger *slog.Logger, node env.NodeID, clock env.Clock) *SlogTracer {
	return &SlogTracer{Logger: logger, Node: node, Clock: clock}
}

// Trace implements env.Tracer.
func (s *SlogTracer) Trace(e env.Event) {
	if s.Logger == nil || !s.Logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.Uint64("node", s.Node))
	if s.Clock != nil {
		attrs = append(attrs, slog.Duration("t", s.Clock.Now()))
	}
	attrs = append(attrs,
		slog.Int64("a", e.A), slog.Int64("b", e.B), slog.Int64("c", e.C), slog.Int64("d", e.D))
	if e.Text != "" {
		attrs = append(attrs, slog.String("text", e.Text))
	}
	s.Logger.LogAttrs(context.Background(), slog.LevelDebug, e.Kind, attrs...)
}

// NewEnv assembles an env.Env for one node: a wall clock and timers on loop,
// the given disk and network, a PCG random stream from seed, and tracer (nil
// means NopTracer).
func NewEnv(loop *Loop, fs env.FS, net env.Network, seed uint64, tracer env.Tracer) env.Env {
	if tracer == nil {
		tracer = NopTracer{}
	}
	return env.Env{
		Clock:  NewClock(loop),
		FS:     fs,
		Net:    net,
		Rand:   NewRand(seed),
		Tracer: tracer,
	}
}
