package compile

import (
	"fmt"
	"math"

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

// OptimizerConfig is an optimizer with PyTorch's semantics: "sgd"
// (torch.optim.SGD, dampening 0) or "adamw" (torch.optim.AdamW, amsgrad off).
type OptimizerConfig struct {
	Name        string  `json:"name"`
	LR          float64 `json:"lr"`
	WeightDecay float64 `json:"weight_decay"`
	// SGD only.
	Momentum float64 `json:"momentum,omitempty"`
	Nesterov bool    `json:"nesterov,omitempty"`
	// AdamW only.
	Beta1 float64 `json:"beta1,omitempty"`
	Beta2 float64 `json:"beta2,omitempty"`
	Eps   float64 `json:"eps,omitempty"`
}

// Optimizer names.
const (
	SGD   = "sgd"
	AdamW = "adamw"
)

// Runtime inputs an optimizer step reads; the trainer sets them before each
// step from OptimizerConfig.Inputs.
const (
	// LRInput is the learning rate of the current epoch.
	LRInput = "lr"
	// AdamStepSizeInput is lr / (1 − β1ᵗ).
	AdamStepSizeInput = "adamw.step_size"
	// AdamBias2SqrtInput is √(1 − β2ᵗ).
	AdamBias2SqrtInput = "adamw.bias_correction2_sqrt"
)

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
	case c.Optimizer.Name != SGD && c.Optimizer.Name != AdamW:
		return fmt.Errorf("train.optimizer.name is %q, available: sgd, adamw", c.Optimizer.Name)
	case c.Optimizer.Name == AdamW && (c.Optimizer.Beta1 < 0 || c.Optimizer.Beta1 >= 1 || c.Optimizer.Beta2 < 0 || c.Optimizer.Beta2 >= 1):
		return fmt.Errorf("train.optimizer.beta1/beta2 are %g/%g, want [0, 1)", c.Optimizer.Beta1, c.Optimizer.Beta2)
	case c.Optimizer.Name == AdamW && !(c.Optimizer.Eps > 0):
		return fmt.Errorf("train.optimizer.eps is %g, want > 0", c.Optimizer.Eps)
	case c.Optimizer.Name == AdamW && (c.Optimizer.Momentum != 0 || c.Optimizer.Nesterov):
		return fmt.Errorf("train.optimizer.momentum/nesterov are SGD settings; adamw uses beta1 and beta2")
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
// Apply takes and returns it (PyTorch's state names).
func (o OptimizerConfig) Slots() []string {
	switch {
	case o.Name == AdamW:
		return []string{"exp_avg", "exp_avg_sq"}
	case o.Momentum != 0:
		return []string{"momentum_buffer"}
	}
	return nil
}

// InputNames are the runtime inputs the update reads, each of shape [1].
func (o OptimizerConfig) InputNames() []string {
	if o.Name == AdamW {
		return []string{LRInput, AdamStepSizeInput, AdamBias2SqrtInput}
	}
	return []string{LRInput}
}

// Inputs gives the runtime inputs for optimizer step t (1-based) at
// learning rate lr, computed in float64 as PyTorch computes them in Python.
func (o OptimizerConfig) Inputs(lr float64, t int64) map[string]float32 {
	in := map[string]float32{LRInput: float32(lr)}
	if o.Name == AdamW {
		in[AdamStepSizeInput] = float32(lr / (1 - math.Pow(o.Beta1, float64(t))))
		in[AdamBias2SqrtInput] = float32(math.Sqrt(1 - math.Pow(o.Beta2, float64(t))))
	}
	return in
}

// Apply appends one update of parameter p with gradient grad to g and
// returns the new parameter and the new slot values. in holds the runtime
// inputs named by InputNames.
//
// SGD (dampening 0):
//
//	g ← grad + wd·p;  buf ← momentum·buf + g;  d ← nesterov ? g + momentum·buf : buf;  p ← p − lr·d
//
// PyTorch sets buf = g on the first step; with buf starting at zero the
// update above gives the same value, so no first-step flag is needed.
//
// AdamW:
//
//	p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	p ← p − (lr/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + eps)
func (o OptimizerConfig) Apply(g *graph.Graph, p, grad *graph.Value, slots []*graph.Value, in map[string]*graph.Value) (*graph.Value, []*graph.Value) {
	if len(slots) != len(o.Slots()) {
		g.Fail(fmt.Errorf("optimizer %s: %d slots given, it keeps %d", o.Name, len(slots), len(o.Slots())))
		return p, slots
	}
	for _, name := range o.InputNames() {
		if in[name] == nil {
			g.Fail(fmt.Errorf("optimizer %s: runtime input %s is not given", o.Name, name))
			return p, slots
		}
	}
	c := func(v float64) *graph.Value { return g.ConstFloat(float32(v)) }
	lr := in[LRInput]
	if o.Name == AdamW {
		if o.WeightDecay != 0 {
			p = g.Mul(p, g.Sub(c(1), g.Mul(lr, c(o.WeightDecay))))
		}
		m := g.Add(g.Mul(slots[0], c(o.Beta1)), g.Mul(grad, c(1-o.Beta1)))
		v := g.Add(g.Mul(slots[1], c(o.Beta2)), g.Mul(g.Mul(grad, grad), c(1-o.Beta2)))
		denom := g.Add(g.Div(g.Sqrt(v), in[AdamBias2SqrtInput]), c(o.Eps))
		return g.Sub(p, g.Mul(in[AdamStepSizeInput], g.Div(m, denom))), []*graph.Value{m, v}
	}
	d := grad
	if o.WeightDecay != 0 {
		d = g.Add(d, g.Mul(p, c(o.WeightDecay)))
	}
	var newSlots []*graph.Value
	if o.Momentum != 0 {
		buf := g.Add(g.Mul(slots[0], c(o.Momentum)), d)
		newSlots = append(newSlots, buf)
		if o.Nesterov {
			d = g.Add(d, g.Mul(buf, c(o.Momentum)))
		} else {
			d = buf
		}
	}
	return g.Sub(p, g.Mul(d, lr)), newSlots
}

// StepCountKey is the state key of a parameter's own optimizer step count,
// PyTorch's state["step"], kept in plans that count steps per parameter.
func StepCountKey(param string) string { return "step/" + param }

// CountsSteps reports whether the update depends on the step count t.
func (o OptimizerConfig) CountsSteps() bool { return o.Name == AdamW }

// StepInputs computes in the graph what Inputs gives for step t (a [1]
// float32 count, 1-based) at learning rate lr (the [1] LRInput): the same
// formulas in float64, from the learning rate as the float32 input holds it.
func (o OptimizerConfig) StepInputs(g *graph.Graph, lr, t *graph.Value) map[string]*graph.Value {
	in := map[string]*graph.Value{LRInput: lr}
	if o.Name != AdamW {
		return in
	}
	t64 := g.Cast(t, graph.Float64)
	one := constFloat64(g, 1)
	// 1 − βᵗ, with βᵗ = exp(t·ln β).
	bias := func(beta float64) *graph.Value {
		if beta == 0 {
			return one
		}
		return g.Sub(one, g.Exp(g.Mul(t64, constFloat64(g, math.Log(beta)))))
	}
	in[AdamStepSizeInput] = g.Cast(g.Div(g.Cast(lr, graph.Float64), bias(o.Beta1)), graph.Float32)
	in[AdamBias2SqrtInput] = g.Cast(g.Sqrt(bias(o.Beta2)), graph.Float32)
	return in
}

// constFloat64 is x as a float64 value. Graph constants are float32 or
// int64, so x is the sum of its float32 head and tail: 48 significant bits,
// far more than the float32 results need.
func constFloat64(g *graph.Graph, x float64) *graph.Value {
	hi := float32(x)
	lo := float32(x - float64(hi))
	return g.Add(g.Cast(g.ConstFloat(hi), graph.Float64), g.Cast(g.ConstFloat(lo), graph.Float64))
}
