package sim

import (
	"crypto/rand"
	"io"
	"math/big"
	"strings"
	"testing"

	"walraft/core/env"
)

// draws reads n values in [0, 1000) the way etcd raft draws election
// timeouts.
func draws(t *testing.T, n int) []int64 {
	t.Helper()
	out := make([]int64, n)
	for i := range out {
		v, err := rand.Int(rand.Reader, big.NewInt(1000))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v.Int64()
	}
	return out
}

func TestInstallCryptoRand(t *testing.T) {
	orig := rand.Reader
	restore := InstallCryptoRand(NewStreams(5).Stream("crypto"))
	a := draws(t, 50)
	restore()
	restore() // idempotent
	if rand.Reader != orig || CryptoRandInstalled() {
		t.Fatal("restore did not put the original reader back")
	}
	restore = InstallCryptoRand(NewStreams(5).Stream("crypto"))
	b := draws(t, 50)
	restore()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, draw %d differs: %d vs %d", i, a[i], b[i])
		}
	}
	restore = InstallCryptoRand(NewStreams(6).Stream("crypto"))
	c := draws(t, 50)
	restore()
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same > 5 {
		t.Fatalf("seeds 5 and 6 share %d of 50 draws", same)
	}
}

func TestInstallCryptoRandTwicePanics(t *testing.T) {
	restore := InstallCryptoRand(NewStreams(1).Stream("crypto"))
	defer restore()
	defer func() {
		r := recover()
		msg, _ := r.(string)
		if !strings.Contains(msg, "only one simulation may run per process") {
			t.Fatalf("second install: recovered %v, want the one-simulation panic", r)
		}
		// The first installation is intact.
		if !CryptoRandInstalled() {
			t.Fatal("failed second install uninstalled the first")
		}
	}()
	InstallCryptoRand(io.MultiReader())
	t.Fatal("second install did not panic")
}

func TestSecondWorldStartPanicsUntilFirstCloses(t *testing.T) {
	world := func() *World {
		w, err := NewWorld(1, WorldConfig{})
		must(t, err)
		t.Cleanup(w.Close)
		must(t, w.AddNode(1, func(env.NodeID, env.Env) (Receiver, error) { return &recNode{}, nil }, DiskConfig{}))
		return w
	}
	w1, w2 := world(), world()
	must(t, w1.Start())
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("starting a second world did not panic")
			}
		}()
		_ = w2.Start()
	}()
	w1.Close()
	w3 := world()
	must(t, w3.Start())
	w3.Close()
}
