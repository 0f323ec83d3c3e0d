package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure is one plot: its data, kept apart from the drawing so that tests
// read what is drawn.
type Figure struct {
	// Name is the files' base name (NAME.png, NAME.svg).
	Name                string
	Title, XAxis, YAxis string
	LogX                bool
	Series              []Series
}

// Series is one legend entry's points.
type Series struct {
	Name   string
	Points []Point
	// Line joins the points in order; otherwise they are markers only.
	Line bool
	// Marker draws the points with a larger ring (balance points).
	Marker bool
}

// Point is a plotted point with an optional label drawn beside it.
type Point struct {
	X, Y  float64
	Label string
}

// Palette is the series colours in order; series i is drawn in
// Palette()[i % len].
func Palette() []color.RGBA {
	return []color.RGBA{
		{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
		{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
		{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
	}
}

// SeriesColor is the colour series i is drawn in.
func SeriesColor(i int) color.RGBA { p := Palette(); return p[i%len(p)] }

// Figure size: the plot, and the legend in a column to its right.
const (
	figWidth  = 6.5 * vg.Inch
	figHeight = 4.5 * vg.Inch
	// legendPad is the space around the legend column.
	legendPad = 8 * vg.Millimeter / 4
)

// PNG draws the figure as a PNG image.
func (f Figure) PNG() ([]byte, error) { return f.render("png") }

// SVG draws the figure as an SVG document.
func (f Figure) SVG() ([]byte, error) { return f.render("svg") }

func (f Figure) render(format string) ([]byte, error) {
	p, legend, err := f.plot()
	if err != nil {
		return nil, fmt.Errorf("plot %s: %w", f.Name, err)
	}
	var legendWidth vg.Length
	for _, s := range f.Series {
		legendWidth = max(legendWidth, legend.TextStyle.Width(s.Name))
	}
	legendWidth += legend.ThumbnailWidth + legend.Padding + 2*legendPad
	var c vg.CanvasWriterTo
	switch format {
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.New(figWidth+legendWidth, figHeight)}
	case "svg":
		c = vgsvg.New(figWidth+legendWidth, figHeight)
	default:
		return nil, fmt.Errorf("plot %s: unknown format %q", f.Name, format)
	}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Draw(draw.Crop(dc, figWidth+legendPad, -legendPad, 0, -legendPad))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("plot %s: %w", f.Name, err)
	}
	return b.Bytes(), nil
}

// plot builds the plot and its legend (drawn beside it, not over the data).
func (f Figure) plot() (*plot.Plot, plot.Legend, error) {
	p := plot.New()
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	p.Title.Text = f.Title
	p.X.Label.Text = f.XAxis
	p.Y.Label.Text = f.YAxis
	p.Add(plotter.NewGrid())
	if f.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	for i, s := range f.Series {
		if len(s.Points) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(s.Points))
		labels := make([]string, len(s.Points))
		anyLabel := false
		for j, pt := range s.Points {
			if math.IsNaN(pt.X) || math.IsNaN(pt.Y) || (f.LogX && pt.X <= 0) {
				return nil, legend, fmt.Errorf("series %s: point (%g, %g) cannot be drawn", s.Name, pt.X, pt.Y)
			}
			xys[j] = plotter.XY{X: pt.X, Y: pt.Y}
			labels[j] = pt.Label
			anyLabel = anyLabel || pt.Label != ""
		}
		c := SeriesColor(i)
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, legend, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(3.5), Shape: draw.CircleGlyph{}}
		if s.Marker {
			sc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(7), Shape: draw.RingGlyph{}}
		}
		var thumb []plot.Thumbnailer
		if s.Line && len(xys) > 1 {
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, legend, err
			}
			l.LineStyle = draw.LineStyle{Color: c, Width: vg.Points(1.5)}
			p.Add(l)
			thumb = append(thumb, l)
		}
		p.Add(sc)
		legend.Add(s.Name, append(thumb, sc)...)
		if anyLabel {
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
			if err != nil {
				return nil, legend, err
			}
			for j := range lb.TextStyle {
				lb.TextStyle[j].Color = c
				lb.TextStyle[j].XAlign = draw.XLeft
			}
			lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
			p.Add(lb)
		}
	}
	padRange(&p.X, f.LogX)
	padRange(&p.Y, false)
	return p, legend, nil
}

// padRange widens an axis by 5% each side (a factor on a log axis), so
// that no point sits on the axis line.
func padRange(a *plot.Axis, log bool) {
	if log {
		a.Min, a.Max = a.Min/1.25, a.Max*1.25
		return
	}
	d := 0.05 * (a.Max - a.Min)
	if d == 0 {
		d = 0.05*math.Abs(a.Max) + 0.01
	}
	a.Min, a.Max = a.Min-d, a.Max+d
}
