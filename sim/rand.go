package sim

import (
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// Streams derives independent named random streams from one seed. Each
// consumer of randomness (a disk, a link, the workload) takes its own stream
// by name, so adding draws in one component never shifts the draws of
// another: a seed keeps meaning the same run as the code grows.
type Streams struct {
	seed uint64
}

// NewStreams returns the stream family for seed.
func NewStreams(seed uint64) *Streams { return &Streams{seed: seed} }

// Seed returns the family's seed.
func (s *Streams) Seed() uint64 { return s.seed }

// Stream returns a fresh generator for name. The same (seed, name) always
// yields the same sequence; calling Stream twice with one name yields two
// generators with the same sequence, so take each stream once.
func (s *Streams) Stream(name string) *Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	k := h.Sum64()
	return &Rand{r: rand.New(rand.NewPCG(s.seed, k^0x9e3779b97f4a7c15))}
}

// Rand is a deterministic generator with the helpers the simulator needs. It
// implements env.Rand.
type Rand struct {
	r *rand.Rand
}

// Uint64 returns a uniform 64-bit value.
func (r *Rand) Uint64() uint64 { return r.r.Uint64() }

// IntN returns a uniform int in [0, n). n must be > 0.
func (r *Rand) IntN(n int) int { return r.r.IntN(n) }

// Int64N returns a uniform int64 in [0, n). n must be > 0.
func (r *Rand) Int64N(n int64) int64 { return r.r.Int64N(n) }

// Float64 returns a uniform float in [0, 1).
func (r *Rand) Float64() float64 { return r.r.Float64() }

// Chance reports true with probability p.
func (r *Rand) Chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	return r.r.Float64() < p
}

// Duration returns a uniform duration in [lo, hi].
func (r *Rand) Duration(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.r.Int64N(int64(hi-lo)+1))
}

// Read fills p with random bytes; it never fails. It lets a Rand stand in
// for crypto/rand.Reader (see InstallCryptoRand).
func (r *Rand) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += 8 {
		v := r.r.Uint64()
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return len(p), nil
}
