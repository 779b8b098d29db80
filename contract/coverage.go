package contract

import (
	"fmt"
	"sort"
	"strings"
)

// Verdicts of a clause in one mode, from what its scenarios did.
const (
	Verified           = "verified"        // a scenario that contacted the target passed, none failed
	Deviates           = "known deviation" // it behaved as the profile says, none passed or failed
	FailedClause       = "failed"          // a scenario failed
	HarnessOnly        = "harness only"    // passed, but no scenario contacted the target
	NotVerified        = "not verified"    // every scenario was not applicable
	NotSupportedClause = "not supported"   // the implementation cannot be configured for it
	NotSelected        = "not selected"    // no scenario of the run checks it
)

// ClauseCoverage is what a run verified of one clause in one mode.
type ClauseCoverage struct {
	Clause  string         `json:"clause"`
	Mode    Mode           `json:"mode"`
	Verdict string         `json:"verdict"`
	Counts  map[string]int `json:"counts,omitempty"`
	// Reasons say why scenarios were not applicable, each once.
	Reasons []string `json:"reasons,omitempty"`
}

// Coverage is what a run verified, clause by clause, for the modes it
// targeted, and whether that is enough to call the target conformant.
type Coverage struct {
	Modes   []Mode           `json:"modes"`
	Clauses []ClauseCoverage `json:"clauses"`
	// Missing lists the core requirements of a targeted mode that the run
	// selected but did not verify; a run with any is inconclusive.
	Missing []string `json:"missing,omitempty"`
	// ContactedTarget is false when no scenario that reached the target
	// passed or deviated as declared: the run verified nothing about it.
	ContactedTarget bool `json:"contacted_target"`
}

// Conclusive says whether the run verified enough to stand as a verdict.
func (c Coverage) Conclusive() bool { return len(c.Missing) == 0 && c.ContactedTarget }

// Problem says, in one sentence, why the run is inconclusive.
func (c Coverage) Problem() string {
	switch {
	case !c.ContactedTarget:
		return "no scenario that reached the target passed: this run verified nothing about it"
	case len(c.Missing) > 0:
		return "core clauses not verified: " + strings.Join(c.Missing, "; ")
	}
	return ""
}

// ComputeCoverage tallies results per clause for the given modes (for a
// live target its mode; for the reference every mode the run exercised).
func ComputeCoverage(results []ScenarioResult, modes []Mode) Coverage {
	cov := Coverage{Modes: modes}
	verdicts := map[string]string{}
	for _, mode := range modes {
		for _, cl := range Clauses {
			cc := ClauseCoverage{Clause: cl.ID, Mode: mode, Counts: map[string]int{}}
			reached := false
			seen := map[string]bool{}
			for _, r := range results {
				if !contains(r.Clauses, cl.ID) || !r.AppliesTo(mode) {
					continue
				}
				cc.Counts[string(r.Status)]++
				if r.ContactedTarget && (r.Status == Passed || r.Status == KnownDeviation) {
					reached = true
					cov.ContactedTarget = true
				}
				if (r.Status == NotApplicable || r.Status == NotSupported) && !seen[r.Reason] {
					seen[r.Reason] = true
					cc.Reasons = append(cc.Reasons, r.Reason)
				}
			}
			sort.Strings(cc.Reasons)
			switch {
			case len(cc.Counts) == 0:
				cc.Verdict = NotSelected
			case cc.Counts[string(Failed)] > 0:
				cc.Verdict = FailedClause
			case cc.Counts[string(Passed)] > 0 && reached:
				cc.Verdict = Verified
			case cc.Counts[string(KnownDeviation)] > 0:
				cc.Verdict = Deviates
			case cc.Counts[string(Passed)] > 0:
				cc.Verdict = HarnessOnly
			case cc.Counts[string(NotSupported)] > 0 && cc.Counts[string(NotApplicable)] == 0:
				cc.Verdict = NotSupportedClause
			default:
				cc.Verdict = NotVerified
			}
			verdicts[string(mode)+"/"+cl.ID] = cc.Verdict
			cov.Clauses = append(cov.Clauses, cc)
		}
		for _, group := range CoreClauses[mode] {
			selected, ok := false, false
			for _, id := range group {
				v := verdicts[string(mode)+"/"+id]
				selected = selected || v != NotSelected
				// A failure is a verdict too: the run is conclusive about
				// it, and it fails on its own account.
				ok = ok || v == Verified || v == Deviates || v == FailedClause
			}
			if selected && !ok {
				cov.Missing = append(cov.Missing, fmt.Sprintf("%s in %s mode", strings.Join(group, " or "), mode))
			}
		}
	}
	return cov
}

// Lines renders the coverage for a terminal: one line per clause of each
// mode, with the reasons for what was not verified.
func (c Coverage) Lines() []string {
	var out []string
	for _, mode := range c.Modes {
		out = append(out, fmt.Sprintf("coverage, %s mode (core: %s):", mode, coreText(mode)))
		var unselected []string
		for _, cc := range c.Clauses {
			if cc.Mode != mode {
				continue
			}
			if cc.Verdict == NotSelected {
				unselected = append(unselected, cc.Clause)
				continue
			}
			out = append(out, strings.TrimRight(fmt.Sprintf("  %-4s %-16s %s", cc.Clause, cc.Verdict, countText(cc.Counts)), " "))
			for _, r := range cc.Reasons {
				out = append(out, "         not applicable: "+r)
			}
		}
		if len(unselected) > 0 {
			out = append(out, "  no scenario of this run checks "+strings.Join(unselected, ", ")+" in this mode")
		}
	}
	return out
}

func coreText(mode Mode) string {
	var parts []string
	for _, g := range CoreClauses[mode] {
		parts = append(parts, strings.Join(g, " or "))
	}
	return strings.Join(parts, ", ")
}

func countText(counts map[string]int) string {
	var parts []string
	for _, s := range Statuses {
		if n := counts[string(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// AppliesTo says whether a scenario counts for a mode; one that names no
// mode counts for both.
func (r ScenarioResult) AppliesTo(mode Mode) bool {
	return len(r.Modes) == 0 || contains(r.Modes, mode)
}
