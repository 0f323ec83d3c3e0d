package datasets_test

import (
	"math"
	"slices"
	"testing"

	"bmc/datasets"
)

// avCase describes an audio-video fixture: its clips (numbered as in
// make.py, train first) and the frame rules of spec §3.
type avCase struct {
	name    string
	params  map[string]string
	classes int
	sizes   [3]int // train, val, test
	audio   []int64
	pick    int
	labels  []int64 // per clip
	nFrames []int   // per clip
	// evalFrames are the frame numbers evaluation reads from n frames;
	// trainRange the numbers training may read at position i.
	evalFrames func(n int) []int
	trainRange func(n, i int) (lo, hi int)
}

// The rule of Kinetics-Sounds, VGGSound and BalancedAV (maxTrain 9, 9, 8).
func clippedEval(n int) []int {
	if n <= 6 {
		return []int{1, 1, 1}
	}
	seg := n / 3
	return []int{max(seg/2, 1), seg + max(seg/2, 1), 2*seg + max(seg/2, 1)}
}

func clippedTrain(maxTrain int) func(n, i int) (int, int) {
	return func(n, i int) (int, int) {
		if n <= 6 {
			return 1, 1
		}
		seg := n / 3
		return min(i*seg+1, maxTrain), min(i*seg+seg, maxTrain)
	}
}

var avCases = []avCase{
	{
		// CREMA-D: 0-based indices into the sorted listing, k = index+1.
		name: "cremad", params: map[string]string{"size": "8", "val_fraction": "0.34"},
		classes: 6, sizes: [3]int{6, 3, 3}, audio: []int64{1, 10, 8}, pick: 2,
		labels:  []int64{0, 0, 0, 1, 1, 1, 5, 5, 5, 0, 1, 5},
		nFrames: []int{5, 4, 3, 5, 6, 5, 4, 5, 2, 5, 4, 6},
		evalFrames: func(n int) []int {
			seg := n / 2
			return []int{seg/2 + 1, seg + seg/2 + 1}
		},
		trainRange: func(n, i int) (int, int) { return i*(n/2) + 1, i*(n/2) + n/2 },
	},
	{
		name: "ks", params: map[string]string{"size": "8", "val_fraction": "0.34", "classes": "3", "audio_shape": "8x6"},
		classes: 3, sizes: [3]int{6, 3, 3}, audio: []int64{1, 8, 6}, pick: 3,
		labels:     []int64{0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 2},
		nFrames:    []int{10, 12, 5, 10, 4, 10, 12, 10, 7, 10, 12, 5},
		evalFrames: clippedEval, trainRange: clippedTrain(9),
	},
	{
		name: "vggsound", params: map[string]string{"size": "8", "val_fraction": "0.34"},
		classes: 3, sizes: [3]int{6, 3, 3}, audio: []int64{1, 8, 6}, pick: 3,
		labels:     []int64{0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 0, 1},
		nFrames:    []int{10, 10, 12, 5, 4, 10, 10, 7, 10, 10, 12, 5},
		evalFrames: clippedEval, trainRange: clippedTrain(9),
	},
	{
		// BalancedAV: frame numbers index the HDF5 "video" array from 0.
		name: "balancedav", params: map[string]string{"size": "8", "val_fraction": "0.34"},
		classes: 3, sizes: [3]int{6, 3, 3}, audio: []int64{1, 8, 6}, pick: 3,
		labels:     []int64{0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 2},
		nFrames:    []int{10, 12, 5, 10, 7, 10, 10, 10, 4, 10, 12, 5},
		evalFrames: clippedEval, trainRange: clippedTrain(8),
	},
}

// audioClip decodes the fixture clip of an audio array, x[i, j] = c +
// i/100 + j/1000, and checks the array is the clip's.
func audioClip(t *testing.T, x []float32, width int) int {
	t.Helper()
	c := int(math.Round(float64(x[0])))
	if want := float32(c) + 0.01 + 0.002; math.Abs(float64(x[width+2]-want)) > 1e-6 {
		t.Fatalf("audio[1, 2] = %v, want %v for clip %d", x[width+2], want, c)
	}
	return c
}

func TestAudioVideo(t *testing.T) {
	for _, tc := range avCases {
		t.Run(tc.name, func(t *testing.T) {
			d := openDisk(t, tc.name, "testdata/"+tc.name, tc.params)
			spec := d.Spec()
			s := int64(8)
			if spec.Classes != tc.classes || spec.Sizes[datasets.Train] != tc.sizes[0] || spec.Sizes[datasets.Val] != tc.sizes[1] || spec.Sizes[datasets.Test] != tc.sizes[2] {
				t.Fatalf("spec %+v", spec)
			}
			if !slices.Equal(spec.Modalities[0].Shape, tc.audio) || !slices.Equal(spec.Modalities[1].Shape, []int64{3, int64(tc.pick), s, s}) {
				t.Errorf("shapes %v", spec.Modalities)
			}
			if ps := problems(d); len(ps) != 0 {
				t.Errorf("problems on the clean fixture: %v", ps)
			}
			width := int(tc.audio[2])
			train := len(tc.labels) - tc.sizes[2]
			for i := range tc.sizes[2] {
				dst, y := readSeeded(t, d, datasets.Test, i, 3)
				ks, clip, mirrored := (video{dst[1].F32, 3, tc.pick, 8}).frames(t)
				if clip != train+i || y != tc.labels[clip] || audioClip(t, dst[0].F32, width) != clip {
					t.Errorf("test[%d]: clip %d label %d, want clip %d label %d", i, clip, y, train+i, tc.labels[train+i])
				}
				if want := tc.evalFrames(tc.nFrames[clip]); !slices.Equal(ks, want) || slices.Contains(mirrored, true) {
					t.Errorf("test[%d] (%d frames): frames %v mirrored %v, want %v plain", i, tc.nFrames[clip], ks, mirrored, want)
				}
			}
			clips := map[int]bool{}
			for i := range tc.sizes[1] {
				a, y := readSeeded(t, d, datasets.Val, i, 1)
				b, _ := readSeeded(t, d, datasets.Val, i, 2)
				ks, clip, mirrored := (video{a[1].F32, 3, tc.pick, 8}).frames(t)
				clips[clip] = true
				if !sameBuffers(a, b) || y != tc.labels[clip] || !slices.Equal(ks, tc.evalFrames(tc.nFrames[clip])) || slices.Contains(mirrored, true) {
					t.Errorf("val[%d] (clip %d): label %d frames %v mirrored %v, want the evaluation reading, seed-independent", i, clip, y, ks, mirrored)
				}
			}
			augmented, varied := false, map[[2]int]map[int]bool{}
			for seed := range uint64(16) {
				for i := range tc.sizes[0] {
					dst, y := readSeeded(t, d, datasets.Train, i, seed)
					v := video{dst[1].F32, 3, tc.pick, 8}
					for ft := range tc.pick {
						k, clip, green := v.frameAt(t, ft)
						clips[clip] = true
						if y != tc.labels[clip] || audioClip(t, dst[0].F32, width) != clip {
							t.Fatalf("train[%d]: clip %d label %d audio of another clip", i, clip, y)
						}
						lo, hi := tc.trainRange(tc.nFrames[clip], ft)
						if k < lo || k > hi {
							t.Errorf("train[%d] seed %d (%d frames): frame %d is %d, outside [%d, %d]", i, seed, tc.nFrames[clip], ft, k, lo, hi)
						}
						key := [2]int{clip, ft}
						if varied[key] == nil {
							varied[key] = map[int]bool{}
						}
						varied[key][k] = true
						augmented = augmented || math.Abs(green-60) > 3
					}
					again, _ := readSeeded(t, d, datasets.Train, i, seed)
					if !sameBuffers(dst, again) {
						t.Fatalf("train[%d] seed %d: two reads differ", i, seed)
					}
				}
			}
			if !augmented {
				t.Error("16 seeds never cropped or mirrored a training frame")
			}
			moved := false
			for key, ks := range varied {
				if lo, hi := tc.trainRange(tc.nFrames[key[0]], key[1]); hi > lo && len(ks) < 2 {
					t.Errorf("clip %d position %d: 16 seeds always drew frames %v of [%d, %d]", key[0], key[1], ks, lo, hi)
				}
				moved = moved || len(ks) > 1
			}
			if !moved {
				t.Error("training frame choice never varied")
			}
			if len(clips) != train {
				t.Errorf("train and val hold clips %v, want all %d training clips", clips, train)
			}
		})
	}
}
