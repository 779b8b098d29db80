package reports

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mtlsconform/contract"
	"mtlsconform/output"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"statusClass": func(s contract.Status) string { return strings.ReplaceAll(string(s), " ", "-") },
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
	Profile    contract.Profile
	Scheme     string
	SchemeNote string
	Generated  string
	Wall       time.Duration
	Containers int
	Backend    string // where the backend ran: contract.Stats.Backend
	Shared     bool   // contract.Stats.Shared
	CountLine  string
	Modes      []contract.Mode
	Matrix     []Row
	Deviations []Deviation
	Results    []contract.ScenarioResult
	Coverage   contract.Coverage
}

func newPage(r contract.RunResult) page {
	p := page{
		Target:     r.Target,
		Profile:    r.Profile,
		Scheme:     r.Scheme,
		SchemeNote: r.SchemeNote,
		Generated:  time.Now().UTC().Format(time.RFC3339),
		Wall:       r.Wall.Round(time.Millisecond),
		Containers: r.Stats.ContainersStarted,
		Backend:    r.Stats.Backend,
		Shared:     r.Stats.Shared,
		CountLine:  contract.CountLine(r.Results),
		Modes:      contract.Modes,
		Matrix:     Matrix(r.Results),
		Results:    r.Results,
		Coverage:   contract.ComputeCoverage(r.Results, r.Modes),
	}
	for _, d := range r.Profile.Deviations {
		p.Deviations = append(p.Deviations, Deviation{d.Key(), d.Reason})
	}
	sort.Slice(p.Deviations, func(i, j int) bool { return p.Deviations[i].Key < p.Deviations[j].Key })
	return p
}

// HTML writes the self-contained report page.
func HTML(w io.Writer, r contract.RunResult) error {
	return htmlTemplate.Execute(w, newPage(r))
}

// Markdown writes the short summary for a CI job page.
func Markdown(w io.Writer, r contract.RunResult) error {
	p := newPage(r)
	var b strings.Builder
	fmt.Fprintf(&b, "## mtlsconform: %s\n\n", p.Target)
	fmt.Fprintf(&b, "Profile `%s` · header scheme `%s` · %s · wall %v\n\n", p.Profile.Name, p.Scheme, p.CountLine, p.Wall)
	var modes []string
	for _, m := range contract.Modes {
		modes = append(modes, string(m))
	}
	fmt.Fprintf(&b, "| Clause | %s |\n|---|%s\n", strings.Join(modes, " | "), strings.Repeat("---|", len(modes)))
	icon := map[string]string{"passed": "✅ passed", "failed": "❌ failed", "known-deviation": "⚠️ known deviation", "not-applicable": "➖ not applicable", "not-supported": "🚫 not supported", "none": "—"}
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
	if p.SchemeNote != "" {
		fmt.Fprintf(&b, "Header scheme: %s.\n\n", p.SchemeNote)
	}
	b.WriteString("```\n" + strings.Join(p.Coverage.Lines(), "\n") + "\n```\n")
	var failed, deviations []contract.ScenarioResult
	for _, res := range r.Results {
		switch res.Status {
		case contract.Failed:
			failed = append(failed, res)
		case contract.KnownDeviation:
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
// JUnit XML into dir through output.WriteFiles: each file atomically, and
// none of them if key material slipped into any.
func Write(dir string, r contract.RunResult) (Files, error) {
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
	js, err := json.MarshalIndent(contract.NewDocument(r), "", "  ")
	if err != nil {
		return Files{}, fmt.Errorf("encode results: %w", err)
	}
	ju, err := JUnit(r)
	if err != nil {
		return Files{}, err
	}
	err = output.WriteFiles(dir, map[string][]byte{
		filepath.Base(f.HTML): h.Bytes(), filepath.Base(f.Markdown): m.Bytes(),
		filepath.Base(f.JSON): js, filepath.Base(f.JUnit): ju,
	})
	var km *output.KeyMaterialError
	if errors.As(err, &km) {
		return Files{}, fmt.Errorf("refusing to write the reports: %w", km)
	}
	if err != nil {
		return Files{}, fmt.Errorf("write the reports: %w", err)
	}
	return f, nil
}
