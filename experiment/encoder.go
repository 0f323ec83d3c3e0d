package experiment

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"bmc/datasets"
	"bmc/graph/nn"
)

// DefaultEncoder is the encoder the built-in synthetic datasets use: a
// one-hidden-layer MLP.
const DefaultEncoder = "mlp:64,32"

// defaultEncoders are the benchmark's encoders per dataset and modality
// (spec §2.1); modalities not listed take DefaultEncoder.
func defaultEncoders() map[string]map[string]string {
	av := map[string]string{"audio": "resnet18", "visual": "resnet18"}
	return map[string]map[string]string{
		"cremad": av, "ks": av, "balancedav": av, "vggsound": av,
		"ucf101":  {"visual": "resnet18", "flow": "resnet18"},
		"food101": {"visual": "resnet18", "text": "bert"},
		"mosei":   {"text": "transformer", "audio": "transformer", "visual": "transformer"},
	}
}

// encoderSpecs resolves every modality's encoder: the per-modality
// override, else the request's Encoder, else the dataset's default.
func (r Request) encoderSpecs(spec datasets.Spec) ([]nn.EncoderSpec, error) {
	for mod := range r.Encoders {
		if _, ok := spec.Modality(mod); !ok {
			var names []string
			for _, m := range spec.Modalities {
				names = append(names, m.Name)
			}
			return nil, fmt.Errorf("encoder for modality %s: dataset %s has no such modality (modalities: %s)", mod, spec.Name, strings.Join(names, ", "))
		}
	}
	var out []nn.EncoderSpec
	for _, m := range spec.Modalities {
		text, ok := r.Encoders[m.Name]
		if !ok {
			text = r.Encoder
		}
		if text == "" {
			text = defaultEncoders()[spec.Name][m.Name]
		}
		if text == "" {
			text = DefaultEncoder
		}
		enc, err := ParseEncoder(text)
		if err != nil {
			return nil, fmt.Errorf("modality %s: %w", m.Name, err)
		}
		out = append(out, enc)
	}
	return out, nil
}

// ParseEncoder reads KIND[:ITEM,…]: an item is a width (linear and mlp:
// the hidden widths, then the feature width) or an option key=value, e.g.
// "linear:32", "mlp:64,32,dropout=0.1", "resnet18",
// "transformer:layers=1,width=64".
func ParseEncoder(s string) (nn.EncoderSpec, error) {
	kind, rest, _ := strings.Cut(s, ":")
	if !slices.Contains(nn.EncoderKinds(), kind) {
		return nn.EncoderSpec{}, fmt.Errorf("encoder %q: kind %q is unknown (%s)", s, kind, strings.Join(nn.EncoderKinds(), ", "))
	}
	spec := nn.EncoderSpec{Kind: kind}
	var ws []int64
	if rest != "" || strings.Contains(s, ":") {
		for _, item := range strings.Split(rest, ",") {
			item = strings.TrimSpace(item)
			if k, v, isOpt := strings.Cut(item, "="); isOpt {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || k == "" {
					return spec, fmt.Errorf("encoder %q: option %q is not key=number", s, item)
				}
				if spec.Options == nil {
					spec.Options = nn.Options{}
				}
				spec.Options[k] = f
				continue
			}
			w, err := strconv.ParseInt(item, 10, 64)
			if err != nil || w < 1 {
				return spec, fmt.Errorf("encoder %q: width %q is not a positive integer", s, item)
			}
			ws = append(ws, w)
		}
	}
	switch kind {
	case "linear":
		if len(ws) != 1 {
			return spec, fmt.Errorf("encoder %q: a linear encoder has one width (linear:OUT)", s)
		}
		spec.Out = ws[0]
	case "mlp":
		if len(ws) < 2 {
			return spec, fmt.Errorf("encoder %q: an mlp needs at least one hidden width and the output width (mlp:HIDDEN,…,OUT)", s)
		}
		spec.Hidden, spec.Out = ws[:len(ws)-1], ws[len(ws)-1]
	default:
		if len(ws) > 0 {
			return spec, fmt.Errorf("encoder %q: %s takes options key=value, not widths", s, kind)
		}
	}
	return spec, nil
}

// EncoderString writes an encoder spec the way ParseEncoder reads it.
func EncoderString(e nn.EncoderSpec) string {
	var items []string
	if e.Kind == "linear" || e.Kind == "mlp" {
		for _, w := range append(slices.Clone(e.Hidden), e.Out) {
			items = append(items, strconv.FormatInt(w, 10))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.Options)) {
		items = append(items, k+"="+strconv.FormatFloat(e.Options[k], 'g', -1, 64))
	}
	if len(items) == 0 {
		return e.Kind
	}
	return e.Kind + ":" + strings.Join(items, ",")
}

// ParseEncoderFlag reads one --encoder value: SPEC for every modality or
// MODALITY=SPEC for one.
func ParseEncoderFlag(s string) (modality, spec string) {
	head, tail, ok := strings.Cut(s, "=")
	if ok && !strings.ContainsAny(head, ":,") {
		return head, tail
	}
	return "", s
}

// EncoderFlags reads a list of --encoder values: the last SPEC for every
// modality (empty when none) and the MODALITY=SPEC ones by modality (nil
// when none).
func EncoderFlags(items []string) (all string, per map[string]string) {
	for _, item := range items {
		mod, spec := ParseEncoderFlag(item)
		if mod == "" {
			all = spec
			continue
		}
		if per == nil {
			per = map[string]string{}
		}
		per[mod] = spec
	}
	return all, per
}
