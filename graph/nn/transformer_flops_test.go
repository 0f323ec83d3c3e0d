package nn_test

import (
	"testing"

	"bmc/flops"
	"bmc/graph"
	"bmc/graph/nn"
)

// moseiLayerFLOPs is the forward cost of one post-norm encoder layer
// derived by hand (docs/flops.md conventions) for b sequences of l tokens of
// width e, h heads, feed-forward width f, of which lq tokens per sequence
// query (l, or 1 in the last layer).
func moseiLayerFLOPs(b, l, lq, e, h, f int64) int64 {
	t, tq := b*l, b*lq // key/value tokens, query tokens
	d := e / h
	var n int64
	if lq == l {
		n += 2*t*e*3*e + t*3*e // packed in-projection with bias
	} else {
		n += 2*tq*e*e + tq*e   // query projection
		n += 2*t*e*2*e + t*2*e // key-value projection
	}
	if l < d {
		n += b * h * lq * l // 1/√d on the scores
	} else {
		n += tq * e // 1/√d on the queries
	}
	n += 2 * b * h * lq * l * d // q·kᵀ
	n += b * h * lq * (5*l - 2) // softmax over l keys
	n += 2 * b * h * lq * l * d // weights·v
	n += 2*tq*e*e + tq*e        // out-projection
	n += tq * e                 // residual
	n += tq * (7*e + 3)         // norm1
	n += 2*tq*e*f + tq*f + tq*f // linear1, ReLU
	n += 2*tq*f*e + tq*e + tq*e // linear2, residual
	n += tq * (7*e + 3)         // norm2
	return n
}

// TestMOSEITransformerForwardFLOPs counts the CMU-MOSEI encoder's forward
// graph at the reference's size (d_model 1024, 4 heads, ff 2048, 2 layers)
// for the text (L 50, scores scaled) and audio (L 500, queries scaled)
// inputs and compares with the hand-derived count.
func TestMOSEITransformerForwardFLOPs(t *testing.T) {
	const b, e, h, f = 2, 1024, 4, 2048
	for _, tc := range []struct {
		name  string
		l, in int64
	}{{"text", 50, 300}, {"audio", 500, 74}} {
		t.Run(tc.name, func(t *testing.T) {
			m := modelOf(t, "transformer", nil, graph.Shape{tc.l, tc.in})
			g := graph.New("mosei")
			x := g.Input("x", graph.Float32, graph.Shape{b, tc.l, tc.in})
			out, err := m.Forward(g, m.GraphInputs(g), map[string]*graph.Value{"x": x}, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			g.Output("features", out.Features["x"])
			g.Prune()
			got, err := flops.Count(g)
			if err != nil {
				t.Fatal(err)
			}
			want := 2*b*tc.l*tc.in*e + // Conv1d k=1, no bias
				moseiLayerFLOPs(b, tc.l, tc.l, e, h, f) + moseiLayerFLOPs(b, tc.l, 1, e, h, f)
			if got.Phase[graph.PhaseForward] != want || got.Total != want {
				t.Errorf("forward FLOPs %d (total %d), hand-derived %d", got.Phase[graph.PhaseForward], got.Total, want)
			}
			t.Logf("MOSEI %s encoder, batch %d: %.3f GFLOP forward", tc.name, b, float64(want)/1e9)
		})
	}
}
