package flops_test

import (
	"testing"

	"bmc/flops"
	"bmc/graph"
	"bmc/graph/nn"
)

// convRow is one convolution of the ResNet-18 trunk on one input size.
type convRow struct {
	name                 string
	cIn, cOut, k, stride int64
	hOut, wOut           int64
	macs                 int64 // by hand: cOut·hOut·wOut · cIn·k²
	relu                 bool  // a ReLU follows its batch norm directly
	residual             bool  // the block's sum (then ReLU) follows its batch norm
}

// resnet224 is torchvision's resnet18 trunk on one 3×224×224 image. Every
// 3×3/7×7 convolution pads by k/2 and every spatial size is ⌈n/2⌉ after a
// stride of 2: 224 → 112 (stem) → 56 (max-pool) → 28 → 14 → 7.
//
//	layer            C_in C_out  k  s  H_out×W_out  MACs = C_out·H·W·C_in·k²
//	conv1               3    64  7  2   112×112      64·12544·147 = 118,013,952
//	layer1.b.convX     64    64  3  1    56×56       64·3136·576  = 115,605,504 (×4)
//	layer2.0.conv1     64   128  3  2    28×28      128·784·576   =  57,802,752
//	layer2.x.convX    128   128  3  1    28×28      128·784·1152  = 115,605,504 (×3)
//	layer2.0.down      64   128  1  2    28×28      128·784·64    =   6,422,528
//	layer3.0.conv1    128   256  3  2    14×14      256·196·1152  =  57,802,752
//	layer3.x.convX    256   256  3  1    14×14      256·196·2304  = 115,605,504 (×3)
//	layer3.0.down     128   256  1  2    14×14      256·196·128   =   6,422,528
//	layer4.0.conv1    256   512  3  2     7×7       512·49·2304   =  57,802,752
//	layer4.x.convX    512   512  3  1     7×7       512·49·4608   = 115,605,504 (×3)
//	layer4.0.down     256   512  1  2     7×7       512·49·256    =   6,422,528
//
// Sum: 118,013,952 + 4·115,605,504 + 3·(57,802,752 + 3·115,605,504 +
// 6,422,528) = 1,813,561,344 MACs, which is the 1.8136 G of torchvision's
// ResNet-18 without its fc layer (1.814 G with the 0.5 M of fc).
var resnet224 = []convRow{
	{"conv1", 3, 64, 7, 2, 112, 112, 118_013_952, true, false},
	{"layer1.0.conv1", 64, 64, 3, 1, 56, 56, 115_605_504, true, false},
	{"layer1.0.conv2", 64, 64, 3, 1, 56, 56, 115_605_504, false, true},
	{"layer1.1.conv1", 64, 64, 3, 1, 56, 56, 115_605_504, true, false},
	{"layer1.1.conv2", 64, 64, 3, 1, 56, 56, 115_605_504, false, true},
	{"layer2.0.conv1", 64, 128, 3, 2, 28, 28, 57_802_752, true, false},
	{"layer2.0.conv2", 128, 128, 3, 1, 28, 28, 115_605_504, false, true},
	{"layer2.0.downsample", 64, 128, 1, 2, 28, 28, 6_422_528, false, false},
	{"layer2.1.conv1", 128, 128, 3, 1, 28, 28, 115_605_504, true, false},
	{"layer2.1.conv2", 128, 128, 3, 1, 28, 28, 115_605_504, false, true},
	{"layer3.0.conv1", 128, 256, 3, 2, 14, 14, 57_802_752, true, false},
	{"layer3.0.conv2", 256, 256, 3, 1, 14, 14, 115_605_504, false, true},
	{"layer3.0.downsample", 128, 256, 1, 2, 14, 14, 6_422_528, false, false},
	{"layer3.1.conv1", 256, 256, 3, 1, 14, 14, 115_605_504, true, false},
	{"layer3.1.conv2", 256, 256, 3, 1, 14, 14, 115_605_504, false, true},
	{"layer4.0.conv1", 256, 512, 3, 2, 7, 7, 57_802_752, true, false},
	{"layer4.0.conv2", 512, 512, 3, 1, 7, 7, 115_605_504, false, true},
	{"layer4.0.downsample", 256, 512, 1, 2, 7, 7, 6_422_528, false, false},
	{"layer4.1.conv1", 512, 512, 3, 1, 7, 7, 115_605_504, true, false},
	{"layer4.1.conv2", 512, 512, 3, 1, 7, 7, 115_605_504, false, true},
}

// stages are the spatial sizes after the stem, the max-pool and layers 2–4
// (layer1 keeps the max-pool's size); each is ⌈previous/2⌉.
type stages [5]int64

// rowsAt is resnet224's table at other input sizes (h and w stages), with
// the MACs recomputed from the formula.
func rowsAt(cIn int64, h, w stages) []convRow {
	stage := map[int64]int{112: 0, 56: 1, 28: 2, 14: 3, 7: 4}
	rows := make([]convRow, len(resnet224))
	for i, r := range resnet224 {
		s := stage[r.hOut]
		r.hOut, r.wOut = h[s], w[s]
		if i == 0 {
			r.cIn = cIn
		}
		r.macs = r.cOut * r.hOut * r.wOut * r.cIn * r.k * r.k
		rows[i] = r
	}
	return rows
}

// forwardFLOPs is the trunk's forward cost per the FLOP rules: 2 per MAC;
// per batch norm in evaluation mode x·scale + shift (2 per element) and 5
// per channel (var+eps, sqrt, γ/√, mean·scale, β−…); a ReLU 1 per element; a
// residual sum 1 per element then its ReLU; the 3×3 max-pool 8 comparisons
// per output; the mean over h, w (and frames) 1 per input element.
func forwardFLOPs(rows []convRow, frames int64) int64 {
	var total int64
	for _, r := range rows {
		e := r.cOut * r.hOut * r.wOut * frames
		total += 2*r.macs*frames + 2*e + 5*r.cOut
		if r.relu {
			total += e
		}
		if r.residual {
			total += 2 * e
		}
	}
	stem := rows[0]
	pooled := stem.cOut * ((stem.hOut + 1) / 2) * ((stem.wOut + 1) / 2) * frames
	last := rows[len(rows)-1]
	total += 8*pooled + last.cOut*last.hOut*last.wOut*frames
	if frames > 1 {
		total += last.cOut * frames
	}
	return total
}

// The encoder's forward MACs and FLOPs, counted by flops.Count on the built
// evaluation graph, equal the hand-derived tables.
func TestResNet18ForwardCost(t *testing.T) {
	tests := []struct {
		name   string
		sample graph.Shape
		rows   []convRow
		frames int64
	}{
		{"image 3x224x224", graph.Shape{3, 224, 224}, resnet224, 1},
		// 257 → 129 → 65 → 33 → 17 → 9; 188 → 94 → 47 → 24 → 12 → 6.
		{"spectrogram 1x257x188", graph.Shape{1, 257, 188}, rowsAt(1, stages{129, 65, 33, 17, 9}, stages{94, 47, 24, 12, 6}), 1},
		// 1024 → 512 → 256 → 128 → 64 → 32; 128 → 64 → 32 → 16 → 8 → 4.
		{"spectrogram 1x1024x128", graph.Shape{1, 1024, 128}, rowsAt(1, stages{512, 256, 128, 64, 32}, stages{64, 32, 16, 8, 4}), 1},
		// Frames share the weights: three times the image's MACs.
		{"video 3x3x224x224", graph.Shape{3, 3, 224, 224}, resnet224, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var macs int64
			for _, r := range tc.rows {
				if r.macs != r.cOut*r.hOut*r.wOut*r.cIn*r.k*r.k {
					t.Fatalf("table row %s: MACs %d ≠ C_out·H·W·C_in·k²", r.name, r.macs)
				}
				macs += r.macs * tc.frames
			}
			m, err := nn.New(nn.ModelSpec{
				Modalities: []nn.ModalitySpec{{Name: "x", Shape: tc.sample, Encoder: nn.EncoderSpec{Kind: "resnet18"}}},
				Classes:    2, Fusion: nn.FusionConcat,
			})
			if err != nil {
				t.Fatal(err)
			}
			g := graph.New("resnet18")
			x := g.Input("x", graph.Float32, append(graph.Shape{1}, tc.sample...))
			out, err := m.Forward(g, m.GraphInputs(g), map[string]*graph.Value{"x": x}, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			g.Output("features", out.Features["x"])
			g.Prune() // the fusion head
			got, err := flops.Count(g)
			if err != nil {
				t.Fatal(err)
			}
			if got.MACs != macs {
				t.Errorf("MACs: flops.Count %d, hand-derived table %d", got.MACs, macs)
			}
			if want := forwardFLOPs(tc.rows, tc.frames); got.Total != want {
				t.Errorf("FLOPs: flops.Count %d, hand-derived %d", got.Total, want)
			}
		})
	}
	var sum int64
	for _, r := range resnet224 {
		sum += r.macs
	}
	if sum != 1_813_561_344 {
		t.Errorf("the 224×224 table sums to %d MACs, torchvision's trunk has 1,813,561,344", sum)
	}
}
