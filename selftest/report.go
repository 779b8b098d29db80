package selftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// MutantResult is one mutant's outcome.
type MutantResult struct {
	Name     string   `json:"name"`
	Doc      string   `json:"doc"`
	Caught   bool     `json:"caught"`
	CaughtBy []string `json:"caught_by"`
	Wall     string   `json:"wall"`
}

// Report is the self-test's outcome, written as JSON and Markdown.
type Report struct {
	BaselineFailed []string       `json:"baseline_failed"`
	Mutants        []MutantResult `json:"mutants"`
	Caught         int            `json:"caught"`
	Total          int            `json:"total"`
}

func (r *Report) add(m MutantResult) {
	r.Mutants = append(r.Mutants, m)
	r.Total++
	if m.Caught {
		r.Caught++
	}
}

// Passed says the reference passed and every mutant was caught.
func (r *Report) Passed() bool {
	return len(r.BaselineFailed) == 0 && r.Caught == r.Total
}

// KillRate is the share of mutants caught, in percent (0 without mutants).
func (r *Report) KillRate() float64 {
	return 100 * float64(r.Caught) / float64(max(r.Total, 1))
}

// Baseline describes the reference's run: "passes", or which scenarios
// failed on it.
func Baseline(failed []string) string {
	if len(failed) == 0 {
		return "passes"
	}
	return "FAILS: " + strings.Join(failed, "; ")
}

// Markdown is the report as a table of mutants.
func (r *Report) Markdown() []byte {
	var md bytes.Buffer
	fmt.Fprintf(&md, "## mtlsconform self-test\n\nReference: %s. Kill rate %d/%d.\n\n| mutant | what it breaks | caught by |\n|---|---|---|\n",
		Baseline(r.BaselineFailed), r.Caught, r.Total)
	for _, m := range r.Mutants {
		by := "**survived**"
		if m.Caught {
			by = fmt.Sprintf("%d scenario(s), e.g. %s", len(m.CaughtBy), m.CaughtBy[0])
		}
		fmt.Fprintf(&md, "| `%s` | %s | %s |\n", m.Name, m.Doc, by)
	}
	return md.Bytes()
}

// Files returns the report files by name, selftest.json and selftest.md,
// for output.WriteFiles.
func (r *Report) Files() (map[string][]byte, error) {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the self-test report: %w", err)
	}
	return map[string][]byte{"selftest.json": js, "selftest.md": r.Markdown()}, nil
}
