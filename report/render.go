package report

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strings"

	"bmc/internal/atomicfile"
)

// Report is everything a report shows about a set of runs.
type Report struct {
	Set     *Set
	Skipped []Skipped
	// Tables in the order shown: performance, imbalance, FLOPs by category
	// and by method, one per strength sweep, and the runs.
	Tables []Table
	// Figures are the plots over runs (per dataset column and per
	// strength sweep); each run's training curves are drawn when written.
	Figures []Figure
}

// New builds the report of runs.
func New(runs []*Run, skipped []Skipped) *Report {
	s := Build(runs)
	r := &Report{Set: s, Skipped: skipped}
	r.Tables = []Table{s.Performance(), s.Imbalance(), s.FLOPs(), s.MethodFLOPs()}
	for _, b := range s.Balances() {
		r.Tables = append(r.Tables, b.Table())
		r.Figures = append(r.Figures, b.Figures()...)
	}
	r.Tables = append(r.Tables, s.RunsTable())
	r.Figures = append(r.Figures, s.AccuracyVsImbalance()...)
	r.Figures = append(r.Figures, s.AccuracyVsFLOPs()...)
	return r
}

// Markdown is the report's tables as Markdown: bold for best, <u> for
// second.
func (r *Report) Markdown() string {
	var b strings.Builder
	for i, t := range r.Tables {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(t.Markdown())
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, "\nLeft out (%d):\n", len(r.Skipped))
		for _, s := range r.Skipped {
			fmt.Fprintf(&b, "- %s: %s\n", s.Path, s.Reason)
		}
	}
	return b.String()
}

// Markdown renders the table.
func (t Table) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", t.Title)
	if t.Note != "" {
		fmt.Fprintf(&b, "%s\n\n", t.Note)
	}
	esc := strings.NewReplacer("|", `\|`)
	b.WriteString("|")
	for _, h := range t.Header {
		b.WriteString(" " + esc.Replace(h) + " |")
	}
	b.WriteString("\n|")
	for i := range t.Header {
		if i == 0 {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteString("\n")
	for _, row := range t.Rows {
		b.WriteString("|")
		for _, c := range row {
			text := esc.Replace(c.Text)
			switch {
			case c.Mark == Best:
				text = "**" + text + "**"
			case c.Mark == Second:
				text = "<u>" + text + "</u>"
			case c.Average:
				text = "*" + text + "*"
			}
			b.WriteString(" " + text + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// CSVBytes is the table's long form as CSV.
func (t Table) CSVBytes() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(t.CSV); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// maxEmbeddedCurves is how many runs' training curves the HTML page holds
// itself; past it the page links the curve files instead.
const maxEmbeddedCurves = 60

// Write writes the report into dir: report.md, a CSV per table, index.html
// (self-contained: tables and plots inline) and every plot as PNG and SVG
// under plots/ (each run's training curves under plots/runs/RUN/). Each
// file is written whole or not at all. It returns the files written.
func (r *Report) Write(dir string) ([]string, error) {
	var written []string
	write := func(rel string, data []byte) error {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteBytes(path, data); err != nil {
			return err
		}
		written = append(written, path)
		return nil
	}
	if err := write("report.md", []byte(r.Markdown())); err != nil {
		return written, err
	}
	for _, t := range r.Tables {
		data, err := t.CSVBytes()
		if err != nil {
			return written, err
		}
		if err := write(t.Name+".csv", data); err != nil {
			return written, err
		}
	}
	page := htmlPage{Title: "bmc report", Skipped: r.Skipped}
	page.Tables = r.Tables
	plotFile := func(rel string, f Figure) (template.URL, error) {
		png, err := f.PNG()
		if err != nil {
			return "", err
		}
		svg, err := f.SVG()
		if err != nil {
			return "", err
		}
		if err := write(rel+".png", png); err != nil {
			return "", err
		}
		if err := write(rel+".svg", svg); err != nil {
			return "", err
		}
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), nil
	}
	for _, f := range r.Figures {
		src, err := plotFile(filepath.Join("plots", f.Name), f)
		if err != nil {
			return written, err
		}
		page.Figures = append(page.Figures, htmlFigure{Title: f.Title, Src: src})
	}
	embed := len(r.Set.Runs) <= maxEmbeddedCurves
	for _, run := range r.Set.Runs {
		log, err := ReadLog(run.Dir)
		if err != nil {
			return written, fmt.Errorf("training curves of %s: %w", run.Dir, err)
		}
		hr := htmlRun{Name: run.Name, Dir: run.Dir}
		for _, f := range Curves(run.Name, log) {
			rel := filepath.Join("plots", "runs", fileName(run.Name), f.Name)
			src, err := plotFile(rel, f)
			if err != nil {
				return written, err
			}
			if !embed {
				src = template.URL(rel + ".png")
			}
			hr.Figures = append(hr.Figures, htmlFigure{Title: f.Title, Src: src})
		}
		page.Runs = append(page.Runs, hr)
	}
	var html bytes.Buffer
	if err := pageTemplate().Execute(&html, page); err != nil {
		return written, err
	}
	return written, write("index.html", html.Bytes())
}

type htmlPage struct {
	Title   string
	Tables  []Table
	Figures []htmlFigure
	Runs    []htmlRun
	Skipped []Skipped
}

type htmlFigure struct {
	Title string
	Src   template.URL
}

type htmlRun struct {
	Name, Dir string
	Figures   []htmlFigure
}

func pageTemplate() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{
		"best":   func(m Mark) bool { return m == Best },
		"second": func(m Mark) bool { return m == Second },
	}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;font-size:90%}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.avg td{font-style:italic;background:#f6f6f6}
img{max-width:100%;margin:0.5em 0}
.note{color:#555}
</style></head><body>
<h1>{{.Title}}</h1>
{{range .Tables}}<h2>{{.Title}}</h2>{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
<table><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr{{if (index . 0).Average}} class="avg"{{end}}>{{range .}}<td>{{if best .Mark}}<b>{{.Text}}</b>{{else if second .Mark}}<u>{{.Text}}</u>{{else}}{{.Text}}{{end}}</td>{{end}}</tr>
{{end}}</table>
{{end}}
{{if .Figures}}<h2>Plots</h2>{{range .Figures}}<figure><img src="{{.Src}}" alt="{{.Title}}"><figcaption>{{.Title}}</figcaption></figure>
{{end}}{{end}}
{{if .Runs}}<h2>Training curves</h2>{{range .Runs}}<details><summary>{{.Name}} <span class="note">({{.Dir}})</span></summary>
{{range .Figures}}<img src="{{.Src}}" alt="{{.Title}}">{{end}}</details>
{{end}}{{end}}
{{if .Skipped}}<h2>Left out</h2><ul>{{range .Skipped}}<li>{{.Path}}: {{.Reason}}</li>{{end}}</ul>{{end}}
</body></html>
`))
}
