package experiment

import (
	"fmt"

	"bmc/compile"
	"bmc/graph/nn"
	"bmc/internal/machine"
)

// MaxParameters bounds a model's parameter count: 2³⁰, twelve times
// ViT-B/16's 86 million, the largest encoder of the benchmark. A model
// past it is a mistyped width (--encoder mlp:100000000,10), which would
// otherwise allocate for minutes before running out of memory.
const MaxParameters = 1 << 30

// checkModelSize refuses, before its initial values are drawn, a model
// beyond MaxParameters or one whose training state cannot fit in memory.
// The estimate counts the initial values, the parameters and their
// gradients, the optimizer's slots, and the second buffer each state tensor
// is updated into; activations come on top.
func checkModelSize(model *nn.Model, cfg compile.TrainConfig) error {
	elements := func(shape []int64) float64 {
		n := 1.0
		for _, d := range shape {
			n *= float64(d)
		}
		return n
	}
	var params, buffers, largest float64
	var largestName string
	for _, p := range model.Params() {
		n := elements(p.Shape)
		params += n
		if n > largest {
			largest, largestName = n, fmt.Sprintf("%s %v", p.Name, p.Shape)
		}
	}
	for _, b := range model.Buffers() {
		buffers += elements(b.Shape)
	}
	if params > MaxParameters {
		return fmt.Errorf("the model has %.4g parameters (the largest tensor, %s, has %.4g); bmc takes at most %d (ViT-B/16 has 86 million): give smaller encoders (--encoder)",
			params, largestName, largest, MaxParameters)
	}
	slots := float64(len(cfg.Optimizer.Slots()))
	need := 4 * (params*(4+2*slots) + 3*buffers)
	return machine.CheckMemory(fmt.Sprintf("training a model of %.4g parameters with %s (parameters, gradients and optimizer state, before activations)", params, cfg.Optimizer.Name), need)
}
