package sweep

import (
	"strconv"

	"bmc/methods"
)

// strengthParam names a method's hyperparameter that sets how strongly it
// rebalances the modalities (0 or small: the baseline's training).
func strengthParam(method string) (string, bool) {
	switch method {
	case "agm", "ogm": // gradient modulation strength
		return "alpha", true
	case "opm": // feature-dropping strength
		return "alpha", true
	case "pmr", "umt", "reconboost": // weight of the prototype, distillation, gradient-ascent term
		return "alpha", true
	case "mmpareto": // scale of the Pareto-combined gradient
		return "alpha", true
	case "cml": // weight of the confidence hinge
		return "lam", true
	case "mmcosine": // cosine logit scale
		return "scaling", true
	case "relearning": // how far the re-initialisation moves back
		return "move_lambda", true
	}
	return "", false
}

// strengthFactors scale a strength parameter's default in the preset
// sweeps; a factor whose value the parameter's range refuses is left out.
func strengthFactors() []float64 { return []float64{0, 0.25, 0.5, 1, 2, 4, 8} }

// StrengthPreset is the preset strength sweep of a method: its strength
// parameter and values from 0 to 8× its default. ok is false for methods
// without one.
func StrengthPreset(info methods.Info) (s Strength, ok bool) {
	name, ok := strengthParam(info.Name)
	if !ok {
		return Strength{}, false
	}
	for _, p := range info.Params {
		if p.Name != name {
			continue
		}
		def, err := strconv.ParseFloat(p.Default, 64)
		if err != nil {
			return Strength{}, false
		}
		s = Strength{Method: info.Name, Param: name}
		for _, f := range strengthFactors() {
			v := strconv.FormatFloat(def*f, 'g', 6, 64)
			if _, err := methods.Resolve(info, map[string]string{name: v}); err == nil {
				s.Values = append(s.Values, v)
			}
		}
		return s, len(s.Values) > 1
	}
	return Strength{}, false
}
