package lb

import (
	"slices"
	"testing"

	"mtlsconform/contract"
)

// TestEveryBreakNamesItsClauses: a focused self-test runs a mutant against
// the scenarios of the clauses its words name, so every break names
// clauses the contract has.
func TestEveryBreakNamesItsClauses(t *testing.T) {
	for name, doc := range Catalogue {
		cs := ClausesOf(doc)
		if len(cs) == 0 {
			t.Errorf("%s: %q names no clause at its end, as (C1)", name, doc)
		}
		for _, c := range cs {
			if !slices.ContainsFunc(contract.Clauses, func(k contract.Clause) bool { return k.ID == c }) {
				t.Errorf("%s: %s is no clause of the contract", name, c)
			}
		}
	}
	if got := ClausesOf("x (C1, C22)"); !slices.Equal(got, []string{"C1", "C22"}) {
		t.Errorf("ClausesOf = %v", got)
	}
}
