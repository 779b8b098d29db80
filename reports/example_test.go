package reports_test

import (
	"fmt"

	"mtlsconform/contract"
	"mtlsconform/reports"
)

// Runs made elsewhere (one CI job per implementation) put side by side:
// each cell is a clause in one mode of one run, with its reasons.
func ExampleBuildCrossMatrix() {
	c1 := func(impl string, status contract.Status, reason string) contract.Document {
		return contract.NewDocument(contract.RunResult{
			Target: "reference " + impl, Implementation: impl, Modes: []contract.Mode{contract.Mandatory},
			Results: []contract.ScenarioResult{{Name: "no certificate", Clauses: []string{"C1"},
				Modes: []contract.Mode{contract.Mandatory}, Status: status, Reason: reason, ContactedTarget: true}},
		})
	}
	m := reports.BuildCrossMatrix([]contract.Document{
		c1("nginx", contract.Passed, ""),
		c1("haproxy-verify-required", contract.KnownDeviation, "C1 in mandatory mode: refused in the handshake, no 400 page"),
	})
	for i, col := range m.Columns {
		cell := m.Rows[0].Cells[i][0] // C1, mandatory
		fmt.Printf("%s: %s %v\n", col.Name, cell.Label(), cell.Reasons)
	}
	// Output:
	// nginx: passed []
	// haproxy-verify-required: known deviation [C1 in mandatory mode: refused in the handshake, no 400 page]
}
