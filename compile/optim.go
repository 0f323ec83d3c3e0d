package compile

import (
	"fmt"

	"bmc/graph"
)

// TrainConfig is the training setup a plan is compiled for.
type TrainConfig struct {
	Epochs    int `json:"epochs"`
	BatchSize int `json:"batch_size"`
	// EvalBatchSize is the batch of the evaluation graph; the last batch is
	// padded so that every sample is evaluated.
	EvalBatchSize int             `json:"eval_batch_size"`
	Optimizer     OptimizerConfig `json:"optimizer"`
	Scheduler     StepLR          `json:"scheduler"`
	Seed          uint64          `json:"seed"`
	// Protocol is "bmc" (select the model on the validation split) or
	// "balancemm" (select on the test split, as the reference does).
	Protocol string `json:"protocol"`
	// Threads is the ONNX Runtime intra-op thread count (0: ORT's choice).
	Threads int `json:"threads"`
}

// OptimizerConfig is an optimizer with PyTorch's semantics.
type OptimizerConfig struct {
	// Name is "sgd".
	Name        string  `json:"name"`
	LR          float64 `json:"lr"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	Nesterov    bool    `json:"nesterov,omitempty"`
}

// StepLR multiplies the learning rate by Gamma every StepSize epochs,
// stepped once per epoch after validation (PyTorch's StepLR).
type StepLR struct {
	StepSize int     `json:"step_size"`
	Gamma    float64 `json:"gamma"`
}

// LR is the learning rate in effect during epoch (0-based).
func (c TrainConfig) LR(epoch int) float64 {
	lr := c.Optimizer.LR
	if c.Scheduler.StepSize > 0 {
		for range epoch / c.Scheduler.StepSize {
			lr *= c.Scheduler.Gamma
		}
	}
	return lr
}

// Validate checks a training configuration, naming the bad field.
func (c TrainConfig) Validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("train.epochs is %d, want ≥ 1", c.Epochs)
	case c.BatchSize < 1:
		return fmt.Errorf("train.batch_size is %d, want ≥ 1", c.BatchSize)
	case c.EvalBatchSize < 1:
		return fmt.Errorf("train.eval_batch_size is %d, want ≥ 1", c.EvalBatchSize)
	case c.Optimizer.Name != "sgd":
		return fmt.Errorf("train.optimizer.name is %q, available: sgd", c.Optimizer.Name)
	case !(c.Optimizer.LR > 0):
		return fmt.Errorf("train.optimizer.lr is %g, want > 0", c.Optimizer.LR)
	case c.Optimizer.Momentum < 0 || c.Optimizer.Momentum >= 1:
		return fmt.Errorf("train.optimizer.momentum is %g, want [0, 1)", c.Optimizer.Momentum)
	case c.Optimizer.WeightDecay < 0:
		return fmt.Errorf("train.optimizer.weight_decay is %g, want ≥ 0", c.Optimizer.WeightDecay)
	case c.Optimizer.Nesterov && c.Optimizer.Momentum == 0:
		return fmt.Errorf("train.optimizer.nesterov needs momentum > 0")
	case c.Scheduler.StepSize < 0 || (c.Scheduler.StepSize > 0 && !(c.Scheduler.Gamma > 0)):
		return fmt.Errorf("train.scheduler: step_size %d, gamma %g: want step_size ≥ 0 and gamma > 0", c.Scheduler.StepSize, c.Scheduler.Gamma)
	case c.Protocol != "bmc" && c.Protocol != "balancemm":
		return fmt.Errorf("train.protocol is %q, want bmc or balancemm", c.Protocol)
	case c.Threads < 0:
		return fmt.Errorf("train.threads is %d, want ≥ 0", c.Threads)
	}
	return nil
}

// Slots names the per-parameter state the optimizer keeps, in the order
// Apply takes and returns it.
func (o OptimizerConfig) Slots() []string {
	if o.Momentum != 0 {
		return []string{"momentum_buffer"}
	}
	return nil
}

// Apply appends one update of parameter p with gradient grad to g and
// returns the new parameter and the new slot values. SGD follows PyTorch
// (dampening 0):
//
//	g ← grad + wd·p;  buf ← momentum·buf + g;  d ← nesterov ? g + momentum·buf : buf;  p ← p − lr·d
//
// PyTorch sets buf = g on the first step; with buf starting at zero the
// update above gives the same value, so no first-step flag is needed.
func (o OptimizerConfig) Apply(g *graph.Graph, p, grad *graph.Value, slots []*graph.Value, lr *graph.Value) (*graph.Value, []*graph.Value) {
	if len(slots) != len(o.Slots()) {
		g.Fail(fmt.Errorf("optimizer %s: %d slots given, it keeps %d", o.Name, len(slots), len(o.Slots())))
		return p, slots
	}
	d := grad
	if o.WeightDecay != 0 {
		d = g.Add(d, g.Mul(p, g.ConstFloat(float32(o.WeightDecay))))
	}
	var newSlots []*graph.Value
	if o.Momentum != 0 {
		m := g.ConstFloat(float32(o.Momentum))
		buf := g.Add(g.Mul(slots[0], m), d)
		newSlots = append(newSlots, buf)
		if o.Nesterov {
			d = g.Add(d, g.Mul(buf, m))
		} else {
			d = buf
		}
	}
	return g.Sub(p, g.Mul(d, lr)), newSlots
}
