// Package randstream derives independent, reproducible random streams from
// one seed: each purpose ("shuffle", a parameter's name, a split) and index
// (an epoch, a step) gets its own PCG stream, so adding a consumer changes no
// other stream and a resumed run draws what an uninterrupted one would.
package randstream

import (
	"hash/fnv"
	"math/rand/v2"
)

// New returns the stream of a purpose and index under a seed.
func New(seed uint64, purpose string, index uint64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(purpose))
	return rand.New(rand.NewPCG(seed^index*0x9e3779b97f4a7c15, h.Sum64()))
}
