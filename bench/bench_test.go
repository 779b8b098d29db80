package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
)

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestMedianLeavesSamplesInOrder(t *testing.T) {
	in := []float64{3, 1, 2}
	median(in)
	if diff := cmp.Diff([]float64{3, 1, 2}, in); diff != "" {
		t.Errorf("samples after median (-want +got):\n%s", diff)
	}
}

func TestAddWarmCountsSharedScenarios(t *testing.T) {
	call := []contract.CallEvidence{{Method: "GET"}}
	var f Figures
	f.addWarm(contract.RunResult{
		Wall:  1500 * time.Millisecond,
		Stats: contract.Stats{ContainersStarted: 4},
		Results: []contract.ScenarioResult{
			{Name: "paid for its container", StartedLoadBalancer: true, Calls: call, Duration: time.Second},
			{Name: "shared", Calls: call, Duration: 12345 * time.Microsecond},
			{Name: "called nothing", Duration: time.Millisecond},
		},
	})
	f.medians()
	want := Figures{
		WarmWalls: []float64{1.5}, Containers: []int{4}, Scenarios: 3,
		SharedScenarioMS: []float64{12.345}, WarmMedianS: 1.5, SharedScenarioMedM: 12.345,
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
}

func TestMarkdownAndFiles(t *testing.T) {
	f := &Figures{
		Machine: "8 cores (Test CPU), linux/amd64, go1.26", Scenarios: 40,
		WarmWalls: []float64{10, 12}, Containers: []int{5, 7}, SharedScenarioMS: []float64{50},
		HarnessRequestMS: []float64{2}, CurlRequestMS: []float64{4},
	}
	f.medians()
	want := "Machine: 8 cores (Test CPU), linux/amd64, go1.26\n\n" +
		"| measure | median | target | runs / samples |\n|---|---|---|---|\n" +
		"| warm full suite, 40 scenarios (s) | 11.00 | < 20 | 2 |\n" +
		"| containers started per run | 6 | | 2 |\n" +
		"| scenario sharing a running load balancer (ms) | 50.0 | < 150 | 1 |\n" +
		"| one mTLS request, harness client (ms) | 2.00 | ≤ 3× curl | 1 |\n" +
		"| one mTLS request, plain curl (ms) | 4.00 | | 1 |\n" +
		"\nHarness client / curl: 0.50×\n"
	if diff := cmp.Diff(want, f.Markdown()); diff != "" {
		t.Errorf("Markdown (-want +got):\n%s", diff)
	}
	f.ColdWalls, f.ColdMedianS = []float64{80}, 80
	if md := f.Markdown(); !strings.Contains(md, "| cold run, images built (s) | 80.0 | < 90 | 1 |") {
		t.Errorf("no cold-run row:\n%s", md)
	}
	files, err := f.Files()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.Markdown(), string(files["bench.md"])); diff != "" {
		t.Errorf("bench.md (-want +got):\n%s", diff)
	}
	var back Figures
	if err := json.Unmarshal(files["bench.json"], &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*f, back); diff != "" {
		t.Errorf("bench.json round trip (-want +got):\n%s", diff)
	}
}

func TestMachine(t *testing.T) {
	if m := Machine(); !strings.Contains(m, "cores (") || !strings.Contains(m, "go") {
		t.Errorf("Machine() = %q, want cores, CPU and Go version", m)
	}
}
