// Package reports turns a run's results into the files reviewers read: a
// self-contained HTML page with the clause matrix and each scenario's
// evidence, a Markdown summary for a CI job page, JUnit XML, the raw
// results as JSON, and the side-by-side matrix of several runs. It reads
// only package contract's types.
package reports

import (
	"fmt"
	"mtlsconform/contract"
	"strings"
)

// Cell is one clause in one mode: the combined verdict of its scenarios.
type Cell struct {
	Status    contract.Status // empty when no scenario covers it
	Scenarios int
	Counts    map[contract.Status]int
}

// Label is what the matrix shows: the verdict, and how many of its
// scenarios checked nothing where others gave it ("passed, 2 not
// supported").
func (c Cell) Label() string {
	if c.Scenarios == 0 {
		return "—"
	}
	unchecked := map[contract.Status]int{}
	for _, st := range []contract.Status{contract.NotSupported, contract.NotApplicable} {
		if c.Status != st {
			unchecked[st] = c.Counts[st]
		}
	}
	return string(c.Status) + uncheckedSuffix(unchecked)
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
	for _, s := range contract.Statuses {
		if n := c.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return fmt.Sprintf("%d scenario(s): %s", c.Scenarios, strings.Join(parts, ", "))
}

// Row is one clause across the modes.
type Row struct {
	Clause contract.Clause
	Cells  []Cell
}

// Matrix combines results per clause and mode. A cell fails when any of
// its scenarios failed; else it is a known deviation when any is; else it
// passed when any passed; else it is not applicable.
func Matrix(results []contract.ScenarioResult) []Row {
	rows := make([]Row, 0, len(contract.Clauses))
	for _, spec := range contract.MatrixRows() {
		row := Row{Clause: spec.Clause}
		for _, mode := range contract.Modes {
			cell := Cell{Counts: map[contract.Status]int{}}
			for _, r := range results {
				if spec.Covers(r) && r.AppliesTo(mode) {
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

func combine(c map[contract.Status]int) contract.Status {
	switch {
	case c[contract.Failed] > 0:
		return contract.Failed
	case c[contract.KnownDeviation] > 0:
		return contract.KnownDeviation
	case c[contract.Passed] > 0:
		return contract.Passed
	case c[contract.NotSupported] > 0:
		return contract.NotSupported
	case c[contract.NotApplicable] > 0:
		return contract.NotApplicable
	}
	return ""
}
