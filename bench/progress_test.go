package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// A standalone run does not say a node "leads" (it has no one to lead),
// and Progress reports the records written so far during the window.
func TestStandaloneLogAndProgress(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode, cfg.Producers, cfg.Duration, cfg.Warmup, cfg.Dir = ModeStandalone, 4, 1500*time.Millisecond, 0, t.TempDir()
	var mu sync.Mutex
	var logs []string
	var calls []int64
	cfg.Logf = func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, fmt.Sprintf(format, a...))
	}
	cfg.Progress = func(records int64, el time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, records)
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range logs {
		if strings.Contains(l, "leads") {
			t.Errorf("standalone run logged %q", l)
		}
	}
	if len(calls) < 1 || calls[len(calls)-1] <= 0 || res.Acked == 0 {
		t.Errorf("progress calls %v, acked %d: want a call with records written", calls, res.Acked)
	}
}

// Config errors name the CLI's flags, not Go fields.
func TestConfigErrorsNameFlags(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode, cfg.KillLeaderAfter = ModeStandalone, time.Second
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "KillLeaderAfter") || !strings.Contains(err.Error(), "-kill-leader-after") {
		t.Errorf("err %v", err)
	}
	cfg = DefaultConfig()
	cfg.KillLeaderAfter = cfg.Duration
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "KillLeaderAfter") {
		t.Errorf("err %v", err)
	}
}
