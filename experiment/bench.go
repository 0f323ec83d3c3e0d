package experiment

import (
	"fmt"
	"slices"
	"strings"
)

// Benchmark sizes: the two-ResNet18 audio-visual model at the backbone
// benchmark's size and at Kinetics-Sounds' shapes. tools/bench/resnet_step.py
// builds the same models in PyTorch.
const (
	// BenchSizeSmall is batch 8, one 3×112×112 frame, audio 1×256×64, 6
	// classes.
	BenchSizeSmall = "bench"
	// BenchSizeKS is Kinetics-Sounds' shapes: batch 8, three 3×224×224
	// frames, audio 1×1024×128, 31 classes.
	BenchSizeKS = "ks"
)

// BenchSizes lists the benchmark sizes.
func BenchSizes() []string { return []string{BenchSizeSmall, BenchSizeKS} }

// BenchRequest is the Baseline request of a benchmark size on synth-av:
// a ResNet-18 per modality, SGD lr 1e-3, momentum 0.9, weight decay 1e-4.
func BenchRequest(size string) (Request, error) {
	shapes := map[string]map[string]string{
		BenchSizeSmall: {"classes": "6", "shape.audio": "1x256x64", "shape.visual": "3x1x112x112"},
		BenchSizeKS:    {"classes": "31", "shape.audio": "1x1024x128", "shape.visual": "3x3x224x224"},
	}
	data, ok := shapes[size]
	if !ok {
		return Request{}, fmt.Errorf("benchmark size %q: want one of %s", size, strings.Join(BenchSizes(), ", "))
	}
	data = map[string]string{"classes": data["classes"], "shape.audio": data["shape.audio"], "shape.visual": data["shape.visual"],
		"train": "16", "val": "8", "test": "8"}
	return Request{Method: "baseline", Dataset: "synth-av", DataParams: data, Encoder: "resnet18",
		Train: Overrides{BatchSize: 8, EvalBatchSize: 8, LR: 1e-3}}, nil
}

// IsBenchSize reports whether size names a benchmark size.
func IsBenchSize(size string) bool { return slices.Contains(BenchSizes(), size) }
