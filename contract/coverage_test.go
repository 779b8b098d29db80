package contract

import (
	"strings"
	"testing"
)

func result(clause, mode string, status Status, contacted bool) ScenarioResult {
	return ScenarioResult{Name: clause + " " + string(status), Clauses: []string{clause}, Modes: []Mode{Mode(mode)},
		Status: status, ContactedTarget: contacted, Reason: "needs --echo-path"}
}

func TestCoverageDecidesWhatTheRunProves(t *testing.T) {
	core := []ScenarioResult{
		result("C1", "mandatory", Passed, true),
		result("C2", "mandatory", Passed, true),
		result("C5", "mandatory", Passed, true),
	}
	tests := []struct {
		name       string
		results    []ScenarioResult
		conclusive bool
		problem    string
	}{
		{"every core clause verified", core, true, ""},
		{"a core clause only not applicable", append(core[:2:2], result("C5", "mandatory", NotApplicable, false)),
			false, "core clauses not verified: C5 or C4 in mandatory mode"},
		{"C4 stands in for C5", append(core[:2:2], result("C4", "mandatory", Passed, true)), true, ""},
		{"a deviation as the profile declares counts", append(core[1:3:3], result("C1", "mandatory", KnownDeviation, true)), true, ""},
		{"nothing reached the target", []ScenarioResult{result("C16", "mandatory", Passed, false)},
			false, "verified nothing"},
		{"core clause not selected by tags", []ScenarioResult{result("C3", "mandatory", Passed, true)}, true, ""},
	}
	for _, tt := range tests {
		cov := ComputeCoverage(tt.results, []Mode{Mandatory})
		if cov.Conclusive() != tt.conclusive || !strings.Contains(cov.Problem(), tt.problem) {
			t.Errorf("%s: conclusive %v (%q), want %v saying %q", tt.name, cov.Conclusive(), cov.Problem(), tt.conclusive, tt.problem)
		}
	}
	cov := ComputeCoverage(tests[1].results, []Mode{Mandatory})
	text := strings.Join(cov.Lines(), "\n")
	for _, want := range []string{"C1   verified", "C5   not verified", "not applicable: needs --echo-path", "no scenario of this run checks C3"} {
		if !strings.Contains(text, want) {
			t.Errorf("coverage lines lack %q:\n%s", want, text)
		}
	}
}
