package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
)

// A failed job names its failed scenarios under its count line: the
// matrix's output alone says where to look.
func TestMatrixLinesNameFailures(t *testing.T) {
	results := []contract.ScenarioResult{
		{Feature: "Mandatory", Name: "trusted caller", Status: contract.Passed},
		{Feature: "Smuggling", Name: "spoofed verify header", Status: contract.Failed,
			Error: "backend saw X-SSL-Client-Verify: SUCCESS\nsecond line"},
	}
	got := matrixLines("nginx", 7, results)
	want := "nginx   " + contract.CountLine(results) + "\n" +
		"  FAILED Smuggling: spoofed verify header\n" +
		"    backend saw X-SSL-Client-Verify: SUCCESS\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("matrix lines (-want +got):\n%s", diff)
	}
	if got := matrixLines("caddy", 5, results[:1]); got != "caddy "+contract.CountLine(results[:1])+"\n" {
		t.Errorf("a passing job prints its count line alone, got %q", got)
	}
}
