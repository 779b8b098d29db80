// Package reports turns a run's results into the files reviewers read: a
// self-contained HTML page with the clause matrix and each scenario's
// evidence, a Markdown summary for a CI job page, and the raw results as
// JSON. Cucumber JSON and JUnit XML come from godog's own formatters.
package reports

import (
	"fmt"
	"strings"

	"mtlsconform/steps"
)

// Clause is one line of the contract.
type Clause struct {
	ID    string
	Title string
}

// Clauses is the contract the suite checks, in order.
var Clauses = []Clause{
	{"C1", "Mandatory, no certificate: 400 \"No required SSL certificate was sent\", backend not reached"},
	{"C2", "Mandatory, untrusted certificate: 400, backend not reached"},
	{"C3", "Mandatory, expired or not yet valid certificate: 400"},
	{"C4", "Trusted self-signed certificate listed in the truststore: 200 and the product list"},
	{"C5", "CA-signed certificate, truststore with intermediate + root: 200; trust is by CA"},
	{"C6", "Concatenated truststore: every listed client accepted, unlisted refused"},
	{"C7", "Chain completeness: leaf alone refused, leaf + intermediate accepted"},
	{"C8", "Optional, no certificate: backend sees NONE"},
	{"C9", "Optional, trusted certificate: backend sees SUCCESS"},
	{"C10", "Optional, untrusted certificate: backend sees exactly FAILED"},
	{"C11", "Optional, expired certificate: passes with FAILED"},
	{"C12", "Identity headers on success: subject DN, issuer DN, serial"},
	{"C13", "Client-supplied identity headers never reach the backend"},
	{"C14", "Client certificate forwarded URL-encoded in a configurable header"},
	{"C15", "Revoked certificate: 400 (Mandatory) or FAILED (Optional)"},
	{"C16", "Credential formats: PEM, PKCS#12, .crt; a public key is refused"},
	{"C17", "serverAuth-only extended key usage is refused"},
}

// Modes are the matrix columns.
var Modes = []string{"mandatory", "optional"}

// Cell is one clause in one mode: the combined verdict of its scenarios.
type Cell struct {
	Status    steps.Status // empty when no scenario covers it
	Scenarios int
	Counts    map[steps.Status]int
}

// Label is what the matrix shows.
func (c Cell) Label() string {
	if c.Scenarios == 0 {
		return "—"
	}
	return string(c.Status)
}

// Class is the CSS class of the cell.
func (c Cell) Class() string {
	if c.Scenarios == 0 {
		return "none"
	}
	return strings.ReplaceAll(string(c.Status), " ", "-")
}

// Title says how the verdict was reached.
func (c Cell) Title() string {
	if c.Scenarios == 0 {
		return "no scenario checks this clause in this mode"
	}
	var parts []string
	for _, s := range []steps.Status{steps.Passed, steps.Failed, steps.KnownDeviation, steps.NotApplicable} {
		if n := c.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return fmt.Sprintf("%d scenario(s): %s", c.Scenarios, strings.Join(parts, ", "))
}

// Row is one clause across the modes.
type Row struct {
	Clause Clause
	Cells  []Cell
}

// Matrix combines results per clause and mode. A cell fails when any of
// its scenarios failed; else it is a known deviation when any is; else it
// passed when any passed; else it is not applicable.
func Matrix(results []steps.ScenarioResult) []Row {
	rows := make([]Row, 0, len(Clauses))
	for _, cl := range Clauses {
		row := Row{Clause: cl}
		for _, mode := range Modes {
			cell := Cell{Counts: map[steps.Status]int{}}
			for _, r := range results {
				if contains(r.Clauses, cl.ID) && appliesTo(r, mode) {
					cell.Scenarios++
					cell.Counts[r.Status]++
				}
			}
			cell.Status = combine(cell.Counts)
			row.Cells = append(row.Cells, cell)
		}
		rows = append(rows, row)
	}
	return rows
}

// appliesTo says whether a scenario counts for a mode column; one that
// names no mode counts for both.
func appliesTo(r steps.ScenarioResult, mode string) bool {
	return len(r.Modes) == 0 || contains(r.Modes, mode)
}

func combine(c map[steps.Status]int) steps.Status {
	switch {
	case c[steps.Failed] > 0:
		return steps.Failed
	case c[steps.KnownDeviation] > 0:
		return steps.KnownDeviation
	case c[steps.Passed] > 0:
		return steps.Passed
	case c[steps.NotApplicable] > 0:
		return steps.NotApplicable
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
