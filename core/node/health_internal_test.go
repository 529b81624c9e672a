package node

import (
	"testing"
	"time"

	"walraft/core/env"
)

// stepClock is a clock the test moves by hand; syncWatch only reads Now.
type stepClock struct{ now time.Duration }

func (c *stepClock) Now() time.Duration                        { return c.now }
func (c *stepClock) AfterFunc(time.Duration, func()) env.Timer { panic("not used") }

// TestSyncWatchOldest: the hung-disk check times the oldest outstanding
// sync, whatever syncs were issued or completed after it. A red-team bug
// that kept the newest instead survived every campaign: in the simulator
// another log's sync is rarely outstanding at a tick while one log hangs.
func TestSyncWatchOldest(t *testing.T) {
	tests := []struct {
		name   string
		starts []time.Duration // syncs issued at these times, in order
		done   []int           // then these (indexes) complete
		want   time.Duration
		ok     bool
	}{
		{"none", nil, nil, 0, false},
		{"one", []time.Duration{5}, nil, 5, true},
		{"a stuck sync, then newer ones", []time.Duration{1, 7, 9}, nil, 1, true},
		{"newer ones complete, the stuck one stays", []time.Duration{1, 7, 9}, []int{1, 2}, 1, true},
		{"the oldest completes", []time.Duration{1, 7, 9}, []int{0}, 7, true},
		{"all complete", []time.Duration{1, 7}, []int{0, 1}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &stepClock{}
			w := &syncWatch{clock: c, open: map[uint64]time.Duration{}}
			var ends []func(error)
			for _, s := range tt.starts {
				c.now = s
				ends = append(ends, w.track(func(error) {}))
			}
			for _, i := range tt.done {
				ends[i](nil)
			}
			got, ok := w.oldest()
			if got != tt.want || ok != tt.ok {
				t.Fatalf("oldest() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
