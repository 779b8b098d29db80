package runner

import (
	"slices"
	"testing"

	"mtlsconform/lb/all"
)

// TestSuiteMutationsGoWhereTheyCanBreakSomething: a suite-level mutant is
// offered only to an implementation where it changes what a scenario
// sees: crl-not-reloaded where a CRL can be delivered, ocsp-fail-open
// where client certificates are checked by OCSP. Elsewhere it would be a
// mutant no scenario could catch.
func TestSuiteMutationsGoWhereTheyCanBreakSomething(t *testing.T) {
	want := map[string][2]bool{ // implementation: crl-not-reloaded, ocsp-fail-open
		"nginx":         {true, true},
		"apache":        {true, true},
		"haproxy":       {true, false},
		"caddy":         {false, false},
		"trafficserver": {false, false},
	}
	for _, impl := range all.Implementations() {
		w, ok := want[impl.Name()]
		if !ok {
			t.Errorf("%s: say which suite mutations it gets", impl.Name())
			continue
		}
		var names []string
		for _, m := range MutationsOf(impl) {
			names = append(names, m.Name)
		}
		if got := [2]bool{slices.Contains(names, crlNotReloaded), slices.Contains(names, ocspFailOpen)}; got != w {
			t.Errorf("%s: crl-not-reloaded, ocsp-fail-open offered = %v, want %v", impl.Name(), got, w)
		}
		for _, m := range MutationsOf(impl) {
			if len(m.Clauses()) == 0 {
				t.Errorf("%s %s: names no clause it breaks", impl.Name(), m.Name)
			}
		}
		if !slices.Contains(names, "trust-unknown-ca") {
			t.Errorf("%s: trust-unknown-ca missing", impl.Name())
		}
	}
}
