package reports

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"mtlsconform/contract"
)

// The cross-implementation matrix puts runs side by side: one column group
// per implementation (or live target), one row per clause, each cell the
// clause's verdict in one mode with the reason of a deviation or of what
// was not supported. It is built from results.json documents alone, so runs
// made on different machines (one CI job per implementation) merge into
// one report.

// CrossColumn is one run in the matrix.
type CrossColumn struct {
	Name       string               `json:"name"` // the implementation, or the target
	Target     string               `json:"target"`
	Profile    string               `json:"profile"`
	Scheme     string               `json:"scheme,omitempty"`
	CountLine  string               `json:"counts"`
	Conclusive bool                 `json:"conclusive"`
	Problem    string               `json:"problem,omitempty"`
	Failed     int                  `json:"failed"`
	Deviations []contract.Deviation `json:"deviations,omitempty"`
}

// CrossCell is one clause in one mode of one run.
type CrossCell struct {
	Mode    contract.Mode   `json:"mode"`
	Status  contract.Status `json:"status,omitempty"` // empty: no scenario
	Reasons []string        `json:"reasons,omitempty"`
	// Unchecked counts the cell's scenarios that checked nothing (not
	// supported, not applicable) where others gave its status: a passed
	// cell is then passed in part, and says so.
	Unchecked map[contract.Status]int `json:"unchecked,omitempty"`
}

// Class is the cell's CSS class.
func (c CrossCell) Class() string {
	if c.Status == "" {
		return "none"
	}
	return strings.ReplaceAll(string(c.Status), " ", "-")
}

// Label is what the cell shows: its status, and what of it was not
// checked.
func (c CrossCell) Label() string {
	if c.Status == "" {
		return "—"
	}
	return string(c.Status) + uncheckedSuffix(c.Unchecked)
}

// uncheckedSuffix says how many scenarios of a cell checked nothing, by
// why: ", 2 not supported".
func uncheckedSuffix(n map[contract.Status]int) string {
	var s string
	for _, st := range []contract.Status{contract.NotSupported, contract.NotApplicable} {
		if n[st] > 0 {
			s += fmt.Sprintf(", %d %s", n[st], st)
		}
	}
	return s
}

// CrossRow is one clause across every run and mode.
type CrossRow struct {
	Clause contract.Clause `json:"clause"`
	// Cells has, per column, one cell per mode.
	Cells [][]CrossCell `json:"cells"`
}

// CrossMatrix is the whole side-by-side report.
type CrossMatrix struct {
	SchemaVersion int             `json:"schema_version"`
	Generated     string          `json:"generated"`
	Modes         []contract.Mode `json:"modes"`
	Columns       []CrossColumn   `json:"columns"`
	Rows          []CrossRow      `json:"rows"`
}

// Failed counts the failed scenarios over every run.
func (m CrossMatrix) Failed() int {
	n := 0
	for _, c := range m.Columns {
		n += c.Failed
	}
	return n
}

// BuildCrossMatrix puts the runs' documents side by side, in their order.
func BuildCrossMatrix(docs []contract.Document) CrossMatrix {
	m := CrossMatrix{SchemaVersion: contract.SchemaVersion, Generated: time.Now().UTC().Format(time.RFC3339), Modes: contract.Modes}
	schemes := map[string]bool{}
	for _, d := range docs {
		schemes[d.Scheme] = true
	}
	for _, d := range docs {
		name := d.Implementation
		if name == "" {
			name = d.Target
		}
		if len(schemes) > 1 {
			// Implementation × scheme: each column says which.
			name += " · " + d.Scheme
		}
		cov := contract.ComputeCoverage(d.Results, d.Modes)
		m.Columns = append(m.Columns, CrossColumn{
			Name: name, Target: d.Target, Profile: d.Profile, Scheme: d.Scheme, CountLine: contract.CountLine(d.Results),
			Conclusive: cov.Conclusive(), Problem: cov.Problem(),
			Failed: contract.Counts(d.Results)[contract.Failed], Deviations: d.Deviations,
		})
	}
	for _, spec := range contract.MatrixRows() {
		row := CrossRow{Clause: spec.Clause}
		for _, d := range docs {
			var cells []CrossCell
			for _, mode := range contract.Modes {
				cells = append(cells, crossCell(d.Results, spec, mode))
			}
			row.Cells = append(row.Cells, cells)
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

// crossCell combines a clause's scenarios in one mode as the run's own
// matrix does, keeping the reasons of deviations and of what was not
// supported or not applicable.
func crossCell(results []contract.ScenarioResult, spec contract.MatrixRow, mode contract.Mode) CrossCell {
	counts := map[contract.Status]int{}
	reasons := map[contract.Status][]string{}
	cell := CrossCell{Mode: mode}
	for _, r := range results {
		if !spec.Covers(r) || !r.AppliesTo(mode) {
			continue
		}
		counts[r.Status]++
		if r.Status != contract.Passed {
			why := r.Reason
			if r.Status == contract.Failed {
				why, _, _ = strings.Cut(r.Error, "\n")
			}
			why, _, _ = strings.Cut(why, " (observed: ")
			if why != "" {
				reasons[r.Status] = append(reasons[r.Status], why)
			}
		}
	}
	cell.Status = combine(counts)
	// The cell's own status's reasons first, then the others', each
	// named: a known deviation's reason is not a missing option's.
	for _, st := range append([]contract.Status{cell.Status}, contract.Statuses...) {
		for _, why := range reasons[st] {
			if st != cell.Status {
				why = string(st) + ": " + why
			}
			if !slices.Contains(cell.Reasons, why) {
				cell.Reasons = append(cell.Reasons, why)
			}
		}
		delete(reasons, st)
	}
	for _, st := range []contract.Status{contract.NotSupported, contract.NotApplicable} {
		if counts[st] > 0 && cell.Status != st {
			if cell.Unchecked == nil {
				cell.Unchecked = map[contract.Status]int{}
			}
			cell.Unchecked[st] = counts[st]
		}
	}
	return cell
}

//go:embed matrix.html.tmpl
var crossSource string

var crossTemplate = template.Must(template.New("matrix").Funcs(template.FuncMap{"join": strings.Join}).Parse(crossSource))

// CrossHTML writes the matrix as a self-contained page.
func CrossHTML(w io.Writer, m CrossMatrix) error { return crossTemplate.Execute(w, m) }

// CrossMarkdown writes the matrix for a CI job summary.
func CrossMarkdown(w io.Writer, m CrossMatrix) error {
	var b strings.Builder
	b.WriteString("## mtlsconform: implementations side by side\n\n")
	for _, c := range m.Columns {
		fmt.Fprintf(&b, "- **%s** (%s, profile `%s`, header scheme `%s`): %s", c.Name, c.Target, c.Profile, c.Scheme, c.CountLine)
		if !c.Conclusive {
			fmt.Fprintf(&b, " — inconclusive: %s", c.Problem)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n| Clause |")
	for _, c := range m.Columns {
		for _, mode := range m.Modes {
			fmt.Fprintf(&b, " %s %s |", c.Name, mode)
		}
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(m.Columns)*len(m.Modes)) + "\n")
	icon := map[string]string{"passed": "✅", "failed": "❌", "known-deviation": "⚠️", "not-applicable": "➖", "not-supported": "🚫", "none": "—"}
	for _, row := range m.Rows {
		fmt.Fprintf(&b, "| %s |", row.Clause.ID)
		for _, cells := range row.Cells {
			for _, c := range cells {
				mark := icon[c.Class()]
				if c.Unchecked[contract.NotSupported] > 0 {
					mark += "🚫" // passed (or deviated) in part
				}
				fmt.Fprintf(&b, " %s |", mark)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n✅ passed · ❌ failed · ⚠️ known deviation · 🚫 not supported · ➖ not applicable · — no scenario; ✅🚫 passed where supported, some scenarios not supported\n")
	var notes []string
	for _, row := range m.Rows {
		for i, cells := range row.Cells {
			for _, c := range cells {
				if c.Status == contract.KnownDeviation || c.Status == contract.NotSupported || c.Status == contract.Failed || c.Unchecked[contract.NotSupported] > 0 {
					notes = append(notes, fmt.Sprintf("- %s %s, %s mode, %s: %s", m.Columns[i].Name, row.Clause.ID, c.Mode, c.Label(), strings.Join(c.Reasons, "; ")))
				}
			}
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n### Why\n\n" + strings.Join(notes, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// CrossFiles renders matrix.html, matrix.md and matrix.json.
func CrossFiles(m CrossMatrix) (map[string][]byte, error) {
	var h, md bytes.Buffer
	if err := CrossHTML(&h, m); err != nil {
		return nil, fmt.Errorf("render matrix.html: %w", err)
	}
	if err := CrossMarkdown(&md, m); err != nil {
		return nil, fmt.Errorf("render matrix.md: %w", err)
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode matrix.json: %w", err)
	}
	return map[string][]byte{"matrix.html": h.Bytes(), "matrix.md": md.Bytes(), "matrix.json": js}, nil
}

// ReadDocument reads a run's results.json, refusing another schema.
func ReadDocument(path string) (contract.Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return contract.Document{}, fmt.Errorf("read %s: %w (give the folder a run wrote its reports to)", path, err)
	}
	var d contract.Document
	if err := json.Unmarshal(data, &d); err != nil {
		return contract.Document{}, fmt.Errorf("%s is not a results.json of mtlsconform: %v", path, err)
	}
	if d.SchemaVersion != contract.SchemaVersion {
		return contract.Document{}, fmt.Errorf("%s has schema version %d; this mtlsconform reads %d: rerun that run with this version",
			path, d.SchemaVersion, contract.SchemaVersion)
	}
	return d, nil
}
