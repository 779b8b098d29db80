package contract_test

import (
	"fmt"

	"mtlsconform/contract"
)

// A run's coverage says what it verified of each mode's core clauses; a run
// that verified none of them must not pass.
func ExampleComputeCoverage() {
	results := []contract.ScenarioResult{
		{Name: "no certificate", Clauses: []string{"C1"}, Modes: []contract.Mode{contract.Mandatory}, Status: contract.Passed, ContactedTarget: true},
		{Name: "untrusted", Clauses: []string{"C2"}, Modes: []contract.Mode{contract.Mandatory}, Status: contract.Passed, ContactedTarget: true},
		{Name: "trusted", Clauses: []string{"C5"}, Modes: []contract.Mode{contract.Mandatory}, Status: contract.NotApplicable,
			Reason: "the scenario issues further certificates under the partner CA; no key of a CA the target trusts was given"},
	}
	cov := contract.ComputeCoverage(results, []contract.Mode{contract.Mandatory})
	fmt.Println(cov.Conclusive())
	fmt.Println(cov.Problem())
	// Output:
	// false
	// core clauses not verified: C5 or C4 in mandatory mode
}

// A profile's deviation covers a failure only where the call shows the
// refusal it describes.
func ExampleProfile_Deviation() {
	p := contract.Profile{Name: "measured", Refusal: contract.RefuseHTTP400, Deviations: []contract.Deviation{
		{Clause: "C11", Observed: contract.RefuseHTTP400, Reason: "expired certificates get 400"},
	}}
	d, ok := p.Deviation([]string{"@C11", "@optional"}, []string{"C11"}, []contract.Mode{contract.Optional})
	fmt.Println(ok, d.Key(), d.Observed)
	fmt.Println(d.Observed.Shows("", 400), d.Observed.Shows("", 200))
	// Output:
	// true C11 http-400
	// true false
}
