package datasets

import (
	"fmt"
	"math/rand/v2"
)

// Frame choice of the video datasets (spec §3). Each picks a few frames
// out of a clip's n by cutting it into equal segments; training draws a
// frame uniformly inside each segment (rng non-nil), evaluation takes a
// fixed one.

// pickMiddle is CREMA-D's rule: 0-based indices into the sorted frame
// list, seg = ⌊n/pick⌋, training i·seg + U{0..seg−1}, evaluation
// i·seg + ⌊seg/2⌋. It needs n ≥ pick.
func pickMiddle(n, pick int, rng *rand.Rand) []int {
	seg := n / pick
	out := make([]int, pick)
	for i := range out {
		if rng != nil {
			out[i] = i*seg + rng.IntN(seg)
		} else {
			out[i] = i*seg + seg/2
		}
	}
	return out
}

// pickSegments is UCF-101's rule: 1-based frame numbers, seg = ⌊n/pick⌋,
// training U{i·seg+1 … i·seg+seg}, evaluation i·seg + max(⌊seg/2⌋, 1).
// It needs n ≥ pick.
func pickSegments(n, pick int, rng *rand.Rand) ([]int, error) {
	seg := n / pick
	if seg < 1 {
		return nil, fmt.Errorf("%d frames, fewer than the %d picked", n, pick)
	}
	out := make([]int, pick)
	for i := range out {
		if rng != nil {
			out[i] = i*seg + 1 + rng.IntN(seg)
		} else {
			out[i] = i*seg + max(seg/2, 1)
		}
	}
	return out, nil
}

// pickClipped is the rule of Kinetics-Sounds, VGGSound and BalancedAV:
// pickSegments when the clip has more than 6 frames, frame 1 three times
// otherwise, and training numbers above maxTrain lowered to maxTrain (the
// reference assumes clips of about ten frames).
func pickClipped(n, pick, maxTrain int, rng *rand.Rand) ([]int, error) {
	if n <= 6 {
		out := make([]int, pick)
		for i := range out {
			out[i] = 1
		}
		return out, nil
	}
	out, err := pickSegments(n, pick, rng)
	if err != nil {
		return nil, err
	}
	if rng != nil {
		for i, t := range out {
			out[i] = min(t, maxTrain)
		}
	}
	return out, nil
}
