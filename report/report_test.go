package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/runtime"
)

// fakeRun is a run directory's known numbers.
type fakeRun struct {
	method, dataset string
	seed            uint64
	hp              map[string]string
	acc, f1         float64
	shapley         map[string]float64
	degree          float64
	flops           int64
}

// write makes the run directory bmc train would have left: results.json,
// config.yaml and a two-epoch log.jsonl.
func (f fakeRun) write(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hp := f.hp
	if hp == nil {
		hp = map[string]string{}
	}
	deg := f.degree
	res := runtime.Result{Method: f.method, Hyper: hp, Dataset: f.dataset, Protocol: "bmc", Epochs: 2, BestEpoch: 1,
		Test:      runtime.SplitMetrics{Samples: 100, Acc: f.acc, F1: f.f1, ModalityAcc: map[string]float64{}},
		Imbalance: runtime.Imbalance{Shapley: f.shapley, Degree: &deg}, TrainingFLOPs: f.flops}
	for m := range f.shapley {
		res.Test.ModalityAcc[m] = f.acc / 2
	}
	if len(f.shapley) < 2 {
		res.Imbalance.Degree = nil
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("method: %s\ndataset: %s\ntrain:\n  epochs: 2\n  lr: 0.01\n  seed: %d\n", f.method, f.dataset, f.seed)
	if len(hp) > 0 {
		cfg += "hyper:\n"
		for k, v := range hp {
			cfg += fmt.Sprintf("  %s: %q\n", k, v)
		}
	}
	log := `{"epoch":0,"lr":0.01,"train":{"loss":2.0,"acc":0.3,"acc_audio":0.2},"val":{"loss":1.8,"acc":0.35,"acc_modality":{"audio":0.3,"visual":0.2}},"best":true}
{"epoch":1,"lr":0.01,"train":{"loss":1.5,"acc":0.5},"validation":{"loss":1.4,"acc":0.55,"acc_audio":0.45,"acc_visual":0.25},"best":true}
`
	for name, content := range map[string][]byte{runtime.ResultsFile: data, "config.yaml": []byte(cfg), runtime.LogFile: []byte(log)} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func av(audio, visual float64) map[string]float64 {
	return map[string]float64{"audio": audio, "visual": visual}
}

// knownRuns are two seeds each of Baseline, OGM, AGM and Unimodal on two
// datasets, with numbers chosen so that the ranks are known: OGM best,
// AGM second on synth-av; on synth-avt AGM best, Baseline second; the
// Unimodal row has the highest accuracy but competes for no mark.
func knownRuns(t *testing.T) []string {
	tmp := t.TempDir()
	var dirs []string
	add := func(f fakeRun) {
		dirs = append(dirs, f.write(t, filepath.Join(tmp, fmt.Sprintf("%s-%s-%s-%d", f.method, f.hp["modality"], f.dataset, f.seed))))
	}
	for seed, v := range []struct{ base, ogm, agm, uni float64 }{{0.50, 0.70, 0.65, 0.90}, {0.60, 0.72, 0.61, 0.92}} {
		s := uint64(seed)
		add(fakeRun{method: "baseline", dataset: "synth-av", seed: s, acc: v.base, f1: v.base - 0.1, shapley: av(0.3, 0.1), degree: 0.2, flops: 100})
		add(fakeRun{method: "ogm", dataset: "synth-av", seed: s, hp: map[string]string{"alpha": "0.3"}, acc: v.ogm, f1: v.ogm - 0.1, shapley: av(0.25, 0.15), degree: 0.1, flops: 300 + int64(seed)})
		add(fakeRun{method: "agm", dataset: "synth-av", seed: s, hp: map[string]string{"alpha": "0.1"}, acc: v.agm, f1: v.agm - 0.1, shapley: av(0.22, 0.18), degree: 0.04, flops: 500})
		add(fakeRun{method: "unimodal", dataset: "synth-av", seed: s, hp: map[string]string{"modality": "audio"}, acc: v.uni, f1: v.uni, shapley: map[string]float64{"audio": 0.4}, flops: 50})
		add(fakeRun{method: "baseline", dataset: "synth-avt", seed: s, acc: 0.40, f1: 0.30, shapley: av(0.3, 0.1), degree: 0.2, flops: 1000})
		add(fakeRun{method: "agm", dataset: "synth-avt", seed: s, hp: map[string]string{"alpha": "0.1"}, acc: 0.45, f1: 0.35, shapley: av(0.2, 0.2), degree: 0, flops: 2000})
		add(fakeRun{method: "ogm", dataset: "synth-avt", seed: s, hp: map[string]string{"alpha": "0.3"}, acc: 0.35, f1: 0.25, shapley: av(0.2, 0.1), degree: 0.1, flops: 1500})
	}
	return dirs
}

func loadKnown(t *testing.T) *Report {
	t.Helper()
	runs, skipped, err := Load(knownRuns(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 14 || len(skipped) != 0 {
		t.Fatalf("%d runs, %d skipped", len(runs), len(skipped))
	}
	return New(runs, skipped)
}

func TestPerformanceTableMarksBestAndSecond(t *testing.T) {
	r := loadKnown(t)
	md := r.Tables[0].Markdown()
	for _, want := range []string{
		"| Method | synth-av ACC | synth-av F1 | synth-avt ACC | synth-avt F1 |",
		"| Baseline | 55.00 ± 7.07 | 45.00 ± 7.07 | <u>40.00 ± 0.00</u> | <u>30.00 ± 0.00</u> |",
		"| Unimodal | 91.00 ± 1.41 | 91.00 ± 1.41 | - | - |",
		"| OGM | **71.00 ± 1.41** | **61.00 ± 1.41** | 35.00 ± 0.00 | 25.00 ± 0.00 |",
		"| AGM | <u>63.00 ± 2.83</u> | <u>53.00 ± 2.83</u> | **45.00 ± 0.00** | **35.00 ± 0.00** |",
		"| *Optimization avg* | *67.00* | *57.00* | *40.00* | *30.00* |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("performance table lacks %q:\n%s", want, md)
		}
	}
	// OGM comes before AGM (the paper's Table 1 order), Baseline and
	// Unimodal first.
	if strings.Index(md, "| Baseline") > strings.Index(md, "| Unimodal") || strings.Index(md, "| OGM") > strings.Index(md, "| AGM") {
		t.Errorf("row order:\n%s", md)
	}
	rows := readCSV(t, r.Tables[0])
	found := false
	for _, row := range rows {
		if row[2] == "OGM" && row[3] == "synth-av" && row[4] == "acc" {
			found = true
			if row[5] != "0.71" || row[7] != "2" || row[8] != "best" {
				t.Errorf("OGM acc CSV row %v", row)
			}
		}
	}
	if !found {
		t.Error("no OGM acc row in performance.csv")
	}
}

func TestImbalanceAndFLOPsTables(t *testing.T) {
	r := loadKnown(t)
	imb := r.Tables[1].Markdown()
	for _, want := range []string{"synth-av φ audio", "synth-av I", "| AGM | 0.2200 ± 0.0000 | 0.1800 ± 0.0000 | 0.0400 ± 0.0000 |"} {
		if !strings.Contains(imb, want) {
			t.Errorf("imbalance table lacks %q:\n%s", want, imb)
		}
	}
	// Optimization on synth-av: OGM 300, 301 and AGM 500, 500 → 400.25;
	// over both datasets with OGM 1500 ×2 and AGM 2000 ×2 → 1075.125.
	// Reference: Baseline 100 ×2 and Unimodal 50 ×2 → 75; with 1000 ×2 on
	// synth-avt → 383.333.
	want := map[[2]string]string{
		{"Reference", "synth-av"}: "75", {"Reference", "synth-avt"}: "1000", {"Reference", "all"}: "383.333",
		{"Optimization", "synth-av"}: "400.250", {"Optimization", "synth-avt"}: "1750", {"Optimization", "all"}: "1075.125",
	}
	got := map[[2]string]string{}
	for _, row := range readCSV(t, r.Tables[2])[1:] {
		got[[2]string{row[0], row[1]}] = row[2]
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("FLOPs %v: %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if md := r.Tables[2].Markdown(); !strings.Contains(md, "| Optimization | 4.002e+02 | 1.750e+03 | 1.075e+03 |") {
		t.Errorf("FLOPs table:\n%s", md)
	}
}

func readCSV(t *testing.T, tab Table) [][]string {
	t.Helper()
	data, err := tab.CSVBytes()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestLoadSkipsUnfinishedRunsAndRefusesOtherSchemas(t *testing.T) {
	tmp := t.TempDir()
	done := fakeRun{method: "baseline", dataset: "synth-av", acc: 0.5, shapley: av(0.3, 0.1), degree: 0.2}.write(t, filepath.Join(tmp, "done"))
	unfinished := filepath.Join(tmp, "unfinished")
	empty := filepath.Join(tmp, "empty")
	file := filepath.Join(tmp, "notes.txt")
	for _, d := range []string{unfinished, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(unfinished, runtime.LogFile), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	runs, skipped, err := Load([]string{unfinished, done, empty, file})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Dir != done {
		t.Fatalf("runs %v", runs)
	}
	want := map[string]string{unfinished: "unfinished run", empty: "not a run directory", file: "not a directory"}
	if len(skipped) != len(want) {
		t.Fatalf("skipped %v", skipped)
	}
	for _, s := range skipped {
		if !strings.Contains(s.Reason, want[s.Path]) {
			t.Errorf("%s skipped for %q, want %q", s.Path, s.Reason, want[s.Path])
		}
	}
	if _, _, err := Load([]string{filepath.Join(tmp, "missing")}); err == nil {
		t.Error("a path that does not exist loads")
	}

	tests := []struct {
		name, content string
		want          []string
	}{
		{"eval report", `{"source":"runs/x","dataset":"synth-av","split":"test","metrics":{"acc":0.5},"imbalance":{}}`, []string{"source and metrics", "bmc eval report"}},
		{"no FLOPs", `{"method":"baseline","dataset":"synth-av","epochs":2,"validation":{"acc":1,"f1":1},"test":{"acc":1,"f1":1},"imbalance":{}}`, []string{"field training_flops missing"}},
		{"no test f1", `{"method":"baseline","dataset":"synth-av","epochs":2,"validation":{"acc":1,"f1":1},"test":{"acc":1},"imbalance":{},"training_flops":1}`, []string{"field test.f1 missing"}},
		{"string acc", `{"method":"baseline","dataset":"synth-av","epochs":2,"validation":{"acc":1,"f1":1},"test":{"acc":"high","f1":1},"imbalance":{},"training_flops":1}`, []string{"field test.acc", "float64", "string"}},
		{"array", `[1,2]`, []string{"not a JSON object"}},
	}
	for _, tc := range tests {
		dir := filepath.Join(tmp, strings.ReplaceAll(tc.name, " ", "-"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, runtime.ResultsFile)
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := Load([]string{done, dir})
		if err == nil {
			t.Errorf("%s: loads", tc.name)
			continue
		}
		for _, w := range append(tc.want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

// A strength sweep: AGM's α at four values next to the Baseline, with the
// best accuracy at α = 0.2 and the lowest I at α = 0.4.
func TestBalancePointsOfAStrengthSweep(t *testing.T) {
	tmp := t.TempDir()
	var dirs []string
	points := []struct {
		alpha    string
		acc, deg float64
	}{{"0", 0.50, 0.30}, {"0.1", 0.55, 0.20}, {"0.2", 0.60, 0.10}, {"0.4", 0.52, 0.02}}
	for seed := range 2 {
		for _, p := range points {
			dirs = append(dirs, fakeRun{method: "agm", dataset: "synth-av", seed: uint64(seed), hp: map[string]string{"alpha": p.alpha, "compat": "false"},
				acc: p.acc + 0.01*float64(seed), shapley: av(0.3, 0.1), degree: p.deg}.write(t, filepath.Join(tmp, fmt.Sprintf("agm-%s-%d", p.alpha, seed))))
		}
		dirs = append(dirs, fakeRun{method: "baseline", dataset: "synth-av", seed: uint64(seed), acc: 0.48, shapley: av(0.3, 0.1), degree: 0.35}.write(t, filepath.Join(tmp, fmt.Sprintf("base-%d", seed))))
	}
	runs, _, err := Load(dirs)
	if err != nil {
		t.Fatal(err)
	}
	bs := Build(runs).Balances()
	if len(bs) != 1 {
		t.Fatalf("%d strength sweeps, want 1", len(bs))
	}
	b := bs[0]
	if b.Param != "alpha" || len(b.Points) != 4 || b.Relative != 2 || b.Absolute != 3 || b.Baseline == nil {
		t.Fatalf("balance %+v", b)
	}
	for i, p := range points {
		if b.Points[i].Text != p.alpha || !near(b.Points[i].Acc.Mean, p.acc+0.005) || !near(b.Points[i].I.Mean, p.deg) {
			t.Errorf("point %d: %+v, want α %s acc %g I %g", i, b.Points[i], p.alpha, p.acc+0.005, p.deg)
		}
	}
	figs := b.Figures()
	fig3 := figs[0]
	names := seriesNames(fig3)
	if !strings.Contains(names, "relative balance point") || !strings.Contains(names, "absolute balance point") || !strings.Contains(names, "Baseline") {
		t.Errorf("Fig. 3 series: %s", names)
	}
	curve := fig3.Series[0].Points
	if len(curve) != 4 || curve[2].Label != "alpha=0.2" || !near(curve[2].X, 0.10) || !near(curve[2].Y, 0.605) {
		t.Errorf("Fig. 3 curve %+v", curve)
	}
	rel := fig3.Series[2].Points[0]
	if !near(rel.X, 0.10) || !near(rel.Y, 0.605) {
		t.Errorf("relative balance point drawn at %+v", rel)
	}
	md := b.Table().Markdown()
	if !strings.Contains(md, "| 0.2 | 60.50 ± 0.71 | 0.1000 ± 0.0000 | relative balance point |") || !strings.Contains(md, "| 0.4 | 52.50 ± 0.71 | 0.0200 ± 0.0000 | absolute balance point |") {
		t.Errorf("balance table:\n%s", md)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func seriesNames(f Figure) string {
	var names []string
	for _, s := range f.Series {
		names = append(names, s.Name)
	}
	return strings.Join(names, "; ")
}

// The training curves come from log.jsonl in either metric layout, and the
// drawn files decode and hold every series: the PNG has pixels of each
// series' colour, the SVG names each series.
func TestCurvesAreDrawnFromTheLog(t *testing.T) {
	dir := fakeRun{method: "baseline", dataset: "synth-av", acc: 0.5, shapley: av(0.3, 0.1), degree: 0.2}.write(t, t.TempDir())
	log, err := ReadLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	figs := Curves("run", log)
	loss, acc := figs[0], figs[1]
	if got := seriesNames(acc); got != "validation acc; validation acc audio; validation acc visual; train acc" {
		t.Fatalf("accuracy series: %s", got)
	}
	want := [][]Point{{{0, 0.35, ""}, {1, 0.55, ""}}, {{0, 0.3, ""}, {1, 0.45, ""}}, {{0, 0.2, ""}, {1, 0.25, ""}}, {{0, 0.3, ""}, {1, 0.5, ""}}}
	for i, s := range acc.Series {
		if fmt.Sprint(s.Points) != fmt.Sprint(want[i]) {
			t.Errorf("%s: %v, want %v", s.Name, s.Points, want[i])
		}
	}
	if fmt.Sprint(loss.Series[0].Points) != "[{0 2 } {1 1.5 }]" || fmt.Sprint(loss.Series[1].Points) != "[{0 1.8 } {1 1.4 }]" {
		t.Errorf("loss series %v", loss.Series)
	}
	checkDrawn(t, acc)
}

// checkDrawn renders a figure and checks both files.
func checkDrawn(t *testing.T, f Figure) {
	t.Helper()
	data, err := f.PNG()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s.png: %v", f.Name, err)
	}
	b := img.Bounds()
	for i, s := range f.Series {
		c := SeriesColor(i)
		n := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bl>>8) == c.B {
					n++
				}
			}
		}
		if n < 20 {
			t.Errorf("%s.png: %d pixels of series %s's colour", f.Name, n, s.Name)
		}
	}
	svg, err := f.SVG()
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("%s.svg: %v", f.Name, err)
			}
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
		}
	}
	for _, s := range f.Series {
		if !strings.Contains(text.String(), s.Name) {
			t.Errorf("%s.svg has no text %q", f.Name, s.Name)
		}
	}
}

func TestScatterFiguresHoldEveryRun(t *testing.T) {
	r := loadKnown(t)
	figs := r.Set.AccuracyVsImbalance()
	if len(figs) != 2 {
		t.Fatalf("%d accuracy-vs-I figures, want one per dataset", len(figs))
	}
	f := figs[0]
	// Unimodal has no imbalance degree, so it has no points here.
	if got := seriesNames(f); got != "Baseline; OGM; AGM" {
		t.Errorf("series %s", got)
	}
	if pts := f.Series[1].Points; len(pts) != 2 || !near(pts[0].X, 0.1) || !near(pts[0].Y, 0.70) || !near(pts[1].Y, 0.72) {
		t.Errorf("OGM points %v", pts)
	}
	fl := r.Set.AccuracyVsFLOPs()[0]
	if !fl.LogX || len(fl.Series) != 4 || fl.Series[3].Points[0].X != 500 {
		t.Errorf("accuracy-vs-FLOPs figure %+v", fl)
	}
	checkDrawn(t, f)
	checkDrawn(t, fl)
}

func TestWriteMakesEveryFile(t *testing.T) {
	r := loadKnown(t)
	out := t.TempDir()
	files, err := r.Write(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"report.md", "performance.csv", "imbalance.csv", "flops.csv", "flops_methods.csv", "runs.csv", "index.html",
		"plots/acc_vs_imbalance_synth-av.png", "plots/acc_vs_flops_synth-avt.svg"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("no %s: %v", want, err)
		}
	}
	// report.md, index.html, 5 CSVs; 2 scatter plots per dataset; 2 curves
	// per run; each plot as PNG and SVG.
	if len(files) != 7+2*2*2+14*2*2 {
		t.Errorf("%d files written", len(files))
	}
	html, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<b>71.00 ± 1.41</b>", "<u>63.00 ± 2.83</u>", "data:image/png;base64,", "Training curves"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	runsCSV, err := os.ReadFile(filepath.Join(out, "runs.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(runsCSV, []byte("dir,method,row,dataset,column,seed,test_acc")) {
		t.Errorf("runs.csv header: %s", runsCSV[:80])
	}
}
