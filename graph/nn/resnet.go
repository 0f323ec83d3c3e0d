package nn

import (
	"fmt"
	"strings"

	"bmc/graph"
)

// ResNet18Features is the feature width of the resnet18 encoder (layer4's
// channels).
const ResNet18Features = 512

// resNet18 is BalanceBenchmark's ResNet18Encoder (spec §2.1): torchvision's
// resnet18 trunk without avgpool and fc, features mean-pooled over space
// (and frames).
//
// Parameter and buffer names are torchvision's state_dict keys under the
// encoder's prefix (conv1.weight, bn1.running_mean, layer2.0.downsample.0.weight,
// …), so pretrained weights load by name. num_batches_tracked is left out:
// it only matters for BatchNorm with momentum=None, which ResNet does not
// use, so a loader skips it.
type resNet18 struct{}

func newResNet18(spec EncoderSpec) (Encoder, error) {
	if len(spec.Hidden) > 0 {
		return nil, fmt.Errorf("resnet18: hidden widths %v: the encoder has a fixed architecture, leave hidden empty", spec.Hidden)
	}
	if spec.Out != 0 && spec.Out != ResNet18Features {
		return nil, fmt.Errorf("resnet18: out is %d, the encoder gives %d features (leave out unset)", spec.Out, ResNet18Features)
	}
	if err := spec.Options.Check("resnet18", nil, nil); err != nil {
		return nil, err
	}
	return resNet18{}, nil
}

// basicBlock is one residual block of the trunk.
type basicBlock struct {
	name            string // "layer2.0"
	in, out, stride int64
	downsample      bool
}

// resNet18Blocks lists the BasicBlocks: layers 1–4 of two blocks each, widths
// 64/128/256/512, the first block of layers 2–4 striding by 2. A block gets
// the 1×1 downsample (conv + BN) when its stride or width changes.
func resNet18Blocks() []basicBlock {
	var blocks []basicBlock
	in := int64(64)
	for l, width := range []int64{64, 128, 256, 512} {
		for b := range 2 {
			stride := int64(1)
			if l > 0 && b == 0 {
				stride = 2
			}
			blocks = append(blocks, basicBlock{
				name: fmt.Sprintf("layer%d.%d", l+1, b), in: in, out: width, stride: stride,
				downsample: stride != 1 || in != width,
			})
			in = width
		}
	}
	return blocks
}

// frames reads the channels and frame count of a sample shape:
// (C, H, W) is one image, (C, T, H, W) is T frames encoded independently.
func frames(in graph.Shape) (c, t int64, err error) {
	for _, d := range in {
		if d < 1 {
			return 0, 0, fmt.Errorf("resnet18: sample shape %v has an empty axis", in)
		}
	}
	switch in.Rank() {
	case 3:
		return in[0], 1, nil
	case 4:
		return in[0], in[1], nil
	}
	return 0, 0, fmt.Errorf("resnet18: sample shape %v: want (C, H, W) or (C, T, H, W)", in)
}

// Layout lists the parameters and running statistics in state_dict order.
func (resNet18) Layout(prefix string, in graph.Shape) (Layout, error) {
	c, _, err := frames(in)
	if err != nil {
		return Layout{}, err
	}
	var l Layout
	add := func(ps []Param, bs []Buffer) {
		l.Params = append(l.Params, ps...)
		l.Buffers = append(l.Buffers, bs...)
	}
	add(convLayout(prefix+"conv1.", 64, c, 7), nil)
	add(BatchNorm2dLayout(prefix+"bn1.", 64))
	for _, b := range resNet18Blocks() {
		p := prefix + b.name + "."
		add(convLayout(p+"conv1.", b.out, b.in, 3), nil)
		add(BatchNorm2dLayout(p+"bn1.", b.out))
		add(convLayout(p+"conv2.", b.out, b.out, 3), nil)
		add(BatchNorm2dLayout(p+"bn2.", b.out))
		if b.downsample {
			add(convLayout(p+"downsample.0.", b.out, b.in, 1), nil)
			add(BatchNorm2dLayout(p+"downsample.1.", b.out))
		}
	}
	l.Out = ResNet18Features
	return l, nil
}

// convLayout is a bias-free nn.Conv2d(in, out, k) weight, drawn as
// torchvision's ResNet draws it: kaiming_normal_(mode="fan_out",
// nonlinearity="relu").
func convLayout(prefix string, out, in, k int64) []Param {
	shape := graph.Shape{out, in, k, k}
	return []Param{{Name: prefix + "weight", Shape: shape, Init: KaimingNormalFanOut(shape)}}
}

// Forward maps x [B, C, H, W] or [B, C, T, H, W] to features [B, 512].
func (r resNet18) Forward(c *Ctx, prefix string, x *graph.Value) (*graph.Value, error) {
	h, t, err := r.enter(c, x)
	if err != nil {
		return nil, err
	}
	for i := range resNet18Stages {
		h = r.stage(c, prefix, i, h)
	}
	return r.leave(c, h, t), c.G.Err()
}

// resNet18Stages is the number of stages a coupling block can follow: stem
// and layer1, then layer2, layer3 and layer4.
const resNet18Stages = 4

// stageWidths are the channels after each stage.
func (resNet18) stageWidths() []int64 { return []int64{64, 128, 256, ResNet18Features} }

// enter folds the frames of x [B, C, T, H, W] into the batch, [B·T, C, H, W]
// (every frame through the same weights), and returns T; images pass as
// they are with T = 1.
func (resNet18) enter(c *Ctx, x *graph.Value) (*graph.Value, int64, error) {
	s := x.Shape()
	if s.Rank() < 4 {
		return nil, 0, fmt.Errorf("resnet18: input %s is %v, want [B, C, H, W] or [B, C, T, H, W]", x.Name(), s)
	}
	ch, t, err := frames(s[1:])
	if err != nil {
		return nil, 0, err
	}
	g := c.G
	h := x
	if s.Rank() == 5 {
		// One frame needs no transpose.
		if t > 1 {
			h = g.Transpose(h, 0, 2, 1, 3, 4)
		}
		h = g.Reshape(h, -1, ch, s[3], s[4])
	}
	return h, t, nil
}

// leave pools the last stage's output [B·T, 512, h, w] to features [B, 512]:
// the mean over h and w, then over the frames (spec: adaptive_avg_pool3d
// to 1).
func (resNet18) leave(c *Ctx, h *graph.Value, t int64) *graph.Value {
	g := c.G
	h = g.ReduceMean(h, false, 2, 3)
	if t > 1 {
		h = g.ReduceMean(g.Reshape(h, -1, t, ResNet18Features), false, 1)
	}
	return h
}

// stage runs stage i on images [N, C, H, W]: stem → maxpool → layer1 for
// i = 0, layer i+1 after.
func (resNet18) stage(c *Ctx, prefix string, i int, h *graph.Value) *graph.Value {
	g := c.G
	if i == 0 {
		pop := g.Scope(prefix + "stem")
		h = conv2d(c, prefix+"conv1.", h, 2, 3)
		h = g.Relu(BatchNorm2d(c, prefix+"bn1.", h))
		h = g.MaxPool(h, graph.PoolOpts{Kernel: []int64{3, 3}, Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}})
		pop()
	}
	layer := fmt.Sprintf("layer%d.", i+1)
	for _, b := range resNet18Blocks() {
		if !strings.HasPrefix(b.name, layer) {
			continue
		}
		pop := g.Scope(prefix + b.name)
		p := prefix + b.name + "."
		y := conv2d(c, p+"conv1.", h, b.stride, 1)
		y = g.Relu(BatchNorm2d(c, p+"bn1.", y))
		y = BatchNorm2d(c, p+"bn2.", conv2d(c, p+"conv2.", y, 1, 1))
		skip := h
		if b.downsample {
			skip = BatchNorm2d(c, p+"downsample.1.", conv2d(c, p+"downsample.0.", h, b.stride, 0))
		}
		h = g.Relu(g.Add(y, skip))
		pop()
	}
	return h
}

// conv2d is a bias-free square convolution with the weight prefix+"weight".
func conv2d(c *Ctx, prefix string, x *graph.Value, stride, pad int64) *graph.Value {
	return c.G.Conv(x, c.Param(prefix+"weight"), nil, graph.ConvOpts{
		Strides: []int64{stride, stride},
		Pads:    []int64{pad, pad, pad, pad},
	})
}
