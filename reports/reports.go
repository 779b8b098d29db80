package reports

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mtlsconform/fixtures/pki"
	"mtlsconform/steps"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"statusClass": func(s steps.Status) string { return strings.ReplaceAll(string(s), " ", "-") },
	"join":        strings.Join,
	"abbrev": func(s string, n int) string {
		if len(s) > n {
			return s[:n] + "…"
		}
		return s
	},
}).Parse(htmlSource))

// Deviation is one known deviation of the profile, for the report.
type Deviation struct{ Key, Reason string }

type page struct {
	Target     string
	Profile    steps.Profile
	Generated  string
	Wall       time.Duration
	Containers int
	CountLine  string
	Modes      []string
	Matrix     []Row
	Deviations []Deviation
	Results    []steps.ScenarioResult
	Coverage   Coverage
}

// CountLine is the one-line tally that ends a run.
func CountLine(results []steps.ScenarioResult) string {
	c := steps.Counts(results)
	return fmt.Sprintf("%d scenarios: %d passed, %d failed, %d known deviation(s), %d not applicable",
		len(results), c[steps.Passed], c[steps.Failed], c[steps.KnownDeviation], c[steps.NotApplicable])
}

func newPage(r steps.RunResult) page {
	p := page{
		Target:     r.Target,
		Profile:    r.Profile,
		Generated:  time.Now().UTC().Format(time.RFC3339),
		Wall:       r.Wall.Round(time.Millisecond),
		Containers: r.Stats.ContainersStarted,
		CountLine:  CountLine(r.Results),
		Modes:      Modes,
		Matrix:     Matrix(r.Results),
		Results:    r.Results,
		Coverage:   ComputeCoverage(r.Results, r.Modes),
	}
	for _, d := range r.Profile.Deviations {
		p.Deviations = append(p.Deviations, Deviation{d.Key(), d.Reason})
	}
	sort.Slice(p.Deviations, func(i, j int) bool { return p.Deviations[i].Key < p.Deviations[j].Key })
	return p
}

// HTML writes the self-contained report page.
func HTML(w io.Writer, r steps.RunResult) error {
	return htmlTemplate.Execute(w, newPage(r))
}

// Markdown writes the short summary for a CI job page.
func Markdown(w io.Writer, r steps.RunResult) error {
	p := newPage(r)
	var b strings.Builder
	fmt.Fprintf(&b, "## mtlsconform: %s\n\n", p.Target)
	fmt.Fprintf(&b, "Profile `%s` · %s · wall %v\n\n", p.Profile.Name, p.CountLine, p.Wall)
	fmt.Fprintf(&b, "| Clause | %s |\n|---|%s\n", strings.Join(Modes, " | "), strings.Repeat("---|", len(Modes)))
	icon := map[string]string{"passed": "✅ passed", "failed": "❌ failed", "known-deviation": "⚠️ known deviation", "not-applicable": "➖ not applicable", "none": "—"}
	for _, row := range p.Matrix {
		var cells []string
		for _, c := range row.Cells {
			cells = append(cells, icon[c.Class()])
		}
		fmt.Fprintf(&b, "| %s | %s |\n", row.Clause.ID, strings.Join(cells, " | "))
	}
	b.WriteString("\n### Coverage\n\n")
	if p.Coverage.Conclusive() {
		b.WriteString("Every core clause of the targeted mode(s) selected by this run was verified against the target.\n\n")
	} else {
		fmt.Fprintf(&b, "**Inconclusive:** %s.\n\n", p.Coverage.Problem())
	}
	b.WriteString("```\n" + strings.Join(p.Coverage.Lines(), "\n") + "\n```\n")
	var failed, deviations []steps.ScenarioResult
	for _, res := range r.Results {
		switch res.Status {
		case steps.Failed:
			failed = append(failed, res)
		case steps.KnownDeviation:
			deviations = append(deviations, res)
		}
	}
	if len(failed) > 0 {
		b.WriteString("\n### Failed\n\n")
		for _, f := range failed {
			first, _, _ := strings.Cut(f.Error, "\n")
			fmt.Fprintf(&b, "- **%s**: %s — %s\n", f.Feature, f.Name, first)
		}
	}
	if len(deviations) > 0 {
		b.WriteString("\n### Known deviations\n\n")
		for _, d := range deviations {
			first, _, _ := strings.Cut(d.Reason, " (observed:")
			fmt.Fprintf(&b, "- %s: %s — %s\n", d.Feature, d.Name, first)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Files names what Write produced.
type Files struct {
	HTML, Markdown, JSON, JUnit string
}

// Write renders the HTML page, the Markdown summary, results.json and the
// JUnit XML into dir, each file atomically, and checks that no key material slipped into
// any of them.
func Write(dir string, r steps.RunResult) (Files, error) {
	f := Files{
		HTML:     filepath.Join(dir, "report.html"),
		Markdown: filepath.Join(dir, "summary.md"),
		JSON:     filepath.Join(dir, "results.json"),
		JUnit:    filepath.Join(dir, "junit.xml"),
	}
	var h, m bytes.Buffer
	if err := HTML(&h, r); err != nil {
		return Files{}, fmt.Errorf("render HTML report: %w", err)
	}
	if err := Markdown(&m, r); err != nil {
		return Files{}, fmt.Errorf("render Markdown summary: %w", err)
	}
	js, err := json.MarshalIndent(struct {
		Target   string                 `json:"target"`
		Profile  string                 `json:"profile"`
		Wall     string                 `json:"wall"`
		Coverage Coverage               `json:"coverage"`
		Results  []steps.ScenarioResult `json:"results"`
	}{r.Target, r.Profile.Name, r.Wall.String(), ComputeCoverage(r.Results, r.Modes), r.Results}, "", "  ")
	if err != nil {
		return Files{}, fmt.Errorf("encode results: %w", err)
	}
	ju, err := JUnit(r)
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("make report folder: %w", err)
	}
	outputs := []struct {
		path string
		data []byte
	}{{f.HTML, h.Bytes()}, {f.Markdown, m.Bytes()}, {f.JSON, js}, {f.JUnit, ju}}
	// Check every report before writing any: all of them or none.
	for _, o := range outputs {
		if bytes.Contains(o.data, []byte("PRIVATE KEY")) {
			return Files{}, fmt.Errorf("refusing to write the reports: %s would contain key material", filepath.Base(o.path))
		}
	}
	for _, o := range outputs {
		if err := pki.WriteFileAtomic(o.path, o.data, 0o644); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}
