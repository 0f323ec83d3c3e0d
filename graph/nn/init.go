package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Initialisation kinds.
const (
	// InitUniform draws U(−Bound, Bound).
	InitUniform = "uniform"
	// InitNormal draws N(Mean, Std²).
	InitNormal = "normal"
	// InitTruncNormal draws N(Mean, Std²) redrawn until inside [Lo, Hi].
	InitTruncNormal = "trunc_normal"
	// InitConstant sets every element to Value.
	InitConstant = "constant"
)

// Init is a PyTorch initialisation rule.
type Init struct {
	Kind  string  `json:"kind"`
	Bound float64 `json:"bound,omitempty"`
	Mean  float64 `json:"mean,omitempty"`
	Std   float64 `json:"std,omitempty"`
	Lo    float64 `json:"lo,omitempty"`
	Hi    float64 `json:"hi,omitempty"`
	Value float64 `json:"value,omitempty"`
}

// Validate rejects rules that cannot draw.
func (in Init) Validate() error {
	switch in.Kind {
	case InitUniform:
		if in.Bound < 0 {
			return fmt.Errorf("uniform bound %v is negative", in.Bound)
		}
	case InitNormal:
		if in.Std < 0 {
			return fmt.Errorf("normal std %v is negative", in.Std)
		}
	case InitTruncNormal:
		if in.Std <= 0 || in.Lo >= in.Hi || in.Hi <= in.Mean-6*in.Std || in.Lo >= in.Mean+6*in.Std {
			return fmt.Errorf("truncated normal N(%v, %v²) on [%v, %v] has (almost) no mass", in.Mean, in.Std, in.Lo, in.Hi)
		}
	case InitConstant:
	default:
		return fmt.Errorf("init kind %q is not one of uniform, normal, trunc_normal, constant", in.Kind)
	}
	return nil
}

// fill draws len(v) values with rng.
func (in Init) fill(v []float32, rng *rand.Rand) {
	for i := range v {
		var x float64
		switch in.Kind {
		case InitUniform:
			x = (rng.Float64()*2 - 1) * in.Bound
		case InitNormal:
			x = in.Mean + in.Std*rng.NormFloat64()
		case InitTruncNormal:
			for {
				x = in.Mean + in.Std*rng.NormFloat64()
				if x >= in.Lo && x <= in.Hi {
					break
				}
			}
		case InitConstant:
			x = in.Value
		}
		v[i] = float32(x)
	}
}

// KaimingNormalFanOut is kaiming_normal_(mode="fan_out", nonlinearity="relu")
// for a conv weight [out, in/groups, k...]: N(0, 2/(out·Πk)).
func KaimingNormalFanOut(shape []int64) Init {
	fanOut := shape[0]
	for _, k := range shape[2:] {
		fanOut *= k
	}
	return Init{Kind: InitNormal, Std: math.Sqrt(2 / float64(fanOut))}
}
