package nn_test

import (
	"strings"
	"testing"

	"bmc/graph"
	"bmc/graph/nn"
)

// Token ids go to token encoders only, float features to the others.
func TestInputKindMustSuitTheEncoder(t *testing.T) {
	tests := []struct {
		name  string
		enc   nn.EncoderSpec
		dtype graph.DType
		want  string
	}{
		{"tokens into a transformer", nn.EncoderSpec{Kind: "transformer", Options: nn.Options{"d_model": 8, "heads": 2, "ff": 8, "layers": 1}}, graph.Int64,
			"modality text holds token ids, but encoder transformer takes float features"},
		{"floats into bert", nn.EncoderSpec{Kind: "bert", Options: nn.Options{"vocab": 20, "hidden": 8, "layers": 1, "heads": 2, "ff": 8, "max_len": 8, "out": 4}}, graph.Float32,
			"modality text holds float features, but encoder bert takes token ids"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := nn.New(nn.ModelSpec{Classes: 2, Fusion: nn.FusionConcat, Modalities: []nn.ModalitySpec{{Name: "text", Shape: graph.Shape{1, 8}, Encoder: tc.enc}}})
			if err != nil {
				t.Fatal(err)
			}
			g := graph.New("f")
			x := g.Input("text", tc.dtype, graph.Shape{2, 1, 8})
			if _, err := m.Forward(g, m.GraphInputs(g), map[string]*graph.Value{"text": x}, nn.Eval); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Forward error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
