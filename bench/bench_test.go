package bench

import (
	"encoding/json"
	"os/exec"
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

func TestRatio(t *testing.T) {
	for _, tt := range []struct{ a, b, want float64 }{{6, 2, 3}, {1, 4, 0.25}, {5, 0, 0}, {0, 3, 0}} {
		if got := ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("ratio(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMediansOfTheBaselineComparison(t *testing.T) {
	f := Figures{BaselineWalls: []float64{2, 1, 3}, CoreWalls: []float64{9, 6, 7, 8}, SingleWalls: []float64{4}}
	f.medians()
	if f.BaselineMedianS != 2 || f.CoreMedianS != 7.5 || f.SingleMedianS != 4 || f.CoreOverBaseline != 3.75 {
		t.Errorf("medians: baseline %v, core %v, single %v, ratio %v; want 2, 7.5, 4, 3.75",
			f.BaselineMedianS, f.CoreMedianS, f.SingleMedianS, f.CoreOverBaseline)
	}
}

func TestBreakDown(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	res := contract.RunResult{
		Stats: contract.Stats{ContainersStarted: 3, LoadBalancers: 2},
		Results: []contract.ScenarioResult{
			{StartedAt: at(1200), Duration: 700 * time.Millisecond, StartedLoadBalancer: true},
			{StartedAt: at(1000), Duration: 300 * time.Millisecond, StartedLoadBalancer: true}, // the first to start
			{StartedAt: at(1500), Duration: 1500 * time.Millisecond},                           // the last to end, at 3000
			{Name: "never started"},
		},
	}
	p := Probe{ImagesMS: 100, LBStartMS: 600, CloseMS: 300, ServerPKIMS: 5, ClientPKIMS: 20}
	got := breakDown(CoreTags, 2, t0, at(3400), res, p)
	want := Breakdown{
		Tags: CoreTags, Scenarios: 4, LoadBalancers: 2, Concurrency: 2,
		TotalMS: 3400, OpenMS: 1000, ScenarioPhaseMS: 2000, TeardownMS: 400,
		ImagesMS: 100, PKIMS: 25, LBStartMS: 600, CloseMS: 300,
		ContainersMS: 900, // 1000 to 1900: the two overlapping starts, counted once
		StartupMS:    1000 - 100 - 5, ScenariosMS: 2000 - 900 - 20,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("breakdown (-want +got):\n%s", diff)
	}
}

func TestBreakDownNeverGoesNegative(t *testing.T) {
	t0 := time.Now()
	// Estimates larger than the phase they are taken from.
	res := contract.RunResult{
		Stats:   contract.Stats{LoadBalancers: 1},
		Results: []contract.ScenarioResult{{StartedAt: t0.Add(10 * time.Millisecond), Duration: time.Second, StartedLoadBalancer: true}},
	}
	b := breakDown(SingleTags, 4, t0, t0.Add(2*time.Second), res, Probe{ImagesMS: 50, ClientPKIMS: 5})
	if b.StartupMS != 0 || b.ScenariosMS != 0 {
		t.Errorf("start-up %v ms, scenarios %v ms: want both clamped at 0", b.StartupMS, b.ScenariosMS)
	}
	// No scenario ran: everything after the open phase is teardown.
	b = breakDown(SingleTags, 1, t0, t0.Add(time.Second), contract.RunResult{}, Probe{})
	if b.OpenMS != 1000 || b.ScenarioPhaseMS != 0 || b.TeardownMS != 0 {
		t.Errorf("empty run: open %v, scenarios %v, teardown %v; want 1000, 0, 0", b.OpenMS, b.ScenarioPhaseMS, b.TeardownMS)
	}
}

func TestCovered(t *testing.T) {
	t0 := time.Now()
	iv := func(from, to int) interval {
		return interval{t0.Add(time.Duration(from) * time.Second), t0.Add(time.Duration(to) * time.Second)}
	}
	for _, tt := range []struct {
		in   []interval
		want time.Duration
	}{
		{nil, 0},
		{[]interval{iv(1, 3)}, 2 * time.Second},
		{[]interval{iv(5, 6), iv(1, 3), iv(2, 4)}, 4 * time.Second}, // unsorted, overlapping
		{[]interval{iv(1, 5), iv(2, 3)}, 4 * time.Second},           // one inside another
		{[]interval{iv(1, 2), iv(2, 3)}, 2 * time.Second},           // touching
	} {
		if got := covered(tt.in); got != tt.want {
			t.Errorf("covered(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestMarkdownWithBaselineAndBreakdown(t *testing.T) {
	f := &Figures{
		Machine: "2 cores (Test CPU), linux/amd64, go1.26", Docker: "20.10.24 (linux/amd64)", Scenarios: 40,
		WarmWalls: []float64{10}, Containers: []int{5}, HarnessRequestMS: []float64{2}, CurlRequestMS: []float64{4},
		BaselineWalls: []float64{1.5, 1.25, 1.75}, CoreWalls: []float64{4, 5, 6}, CoreScenarios: 20,
		SingleWalls: []float64{2}, SingleScenarios: 2,
		Breakdown: &Breakdown{
			Tags: CoreTags, Scenarios: 20, LoadBalancers: 3, Concurrency: 2, TotalMS: 5000, OpenMS: 800,
			ScenarioPhaseMS: 4000, TeardownMS: 200, ImagesMS: 10, PKIMS: 6, ContainersMS: 1500,
			StartupMS: 789, ScenariosMS: 2495,
		},
	}
	f.medians()
	md := f.Markdown()
	for _, want := range []string{
		"Machine: 2 cores (Test CPU), linux/amd64, go1.26\nDocker: 20.10.24 (linux/amd64)\n\n",
		"| shell-script baseline: 2 nginx, 9 curl checks | 1.50 | 3 |\n",
		"| harness, core tags: 20 scenarios | 5.00 | 3 |\n",
		"| harness, @C1: 2 scenario(s) | 2.00 | 1 |\n",
		"Harness / shell script (medians): 3.33×\n",
		"Breakdown of one harness run (" + CoreTags + ", 20 scenarios, concurrency 2):",
		"| start-up: sweep, network if one is made, backend, shared balancer | 789 | derived:",
		"| load balancers: 3 configuration(s) brought up | 1500 | measured:",
		"| teardown | 200 | measured:",
		"| total | 5000 | measured |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	files, err := f.Files()
	if err != nil {
		t.Fatal(err)
	}
	var back Figures
	if err := json.Unmarshal(files["bench.json"], &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*f, back); diff != "" {
		t.Errorf("bench.json round trip (-want +got):\n%s", diff)
	}
}

func TestBaselineScriptIsEmbedded(t *testing.T) {
	s := string(baselineScript)
	for _, want := range []string{"set -euo pipefail", "trap cleanup EXIT", "-p 127.0.0.1::443", "docker port",
		"ssl_verify_client", "optional_no_ca", "No required SSL certificate was sent"} {
		if !strings.Contains(s, want) {
			t.Errorf("baseline.sh lacks %q", want)
		}
	}
	for _, clause := range []string{"C1", "C2", "C4", "C5", "C6", "C8", "C9", "C10"} {
		if !strings.Contains(s, "\ncheck "+clause+" ") {
			t.Errorf("baseline.sh does not check %s", clause)
		}
	}
}

func TestBaselineScriptParses(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command(bash, "-n", "/dev/stdin")
	cmd.Stdin = strings.NewReader(string(baselineScript))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("bash -n baseline.sh: %v\n%s", err, out)
	}
}

func TestTail(t *testing.T) {
	if got := tail("a\nb\nc\n", 2); got != "… 1 line(s) before\nb\nc" {
		t.Errorf("tail = %q", got)
	}
	if got := tail("a\n", 5); got != "a" {
		t.Errorf("tail = %q", got)
	}
}

// TestTargetsAreRatiosToTheScript: every whole-process figure is also
// given over the shell script of the same bench run, against a ratio.
func TestTargetsAreRatiosToTheScript(t *testing.T) {
	f := Figures{
		BaselineWalls: []float64{2}, CoreWalls: []float64{1.5}, SingleProcessWalls: []float64{0.6},
		FullProcessWalls: []float64{1.8}, MatrixWalls: []float64{5},
		WarmSingleProcessWalls: []float64{0.3, 0.2, 0.4}, WarmFullProcessWalls: []float64{1.6},
	}
	f.medians()
	if f.SingleOverBaseline != 0.3 || f.FullOverBaseline != 0.9 || f.MatrixOverBaseline != 2.5 {
		t.Errorf("ratios %v %v %v, want 0.3 0.9 2.5", f.SingleOverBaseline, f.FullOverBaseline, f.MatrixOverBaseline)
	}
	if f.WarmSingleOverBaseline != 0.15 || f.WarmFullOverBaseline != 0.8 {
		t.Errorf("--warm ratios %v %v, want 0.15 0.8", f.WarmSingleOverBaseline, f.WarmFullOverBaseline)
	}
	md := f.targetsMarkdown()
	for _, want := range []string{
		"the shell script of this run took 2.00 s",
		"| run --tags @C1, whole process (s) | 0.60 | 0.30× | ≤ 0.4× | 1 |",
		"| core tags, in process (s) | 1.50 | 0.75× | ≤ 1.0× | 1 |",
		"| full nginx suite, whole process (s) | 1.80 | 0.90× | ≤ 1.0× | 1 |",
		"| matrix of every implementation, whole process (s) | 5.00 | 2.50× | ≤ 3× | 1 |",
		"| run --warm --tags @C1, containers kept by an earlier run (s) | 0.30 | 0.15× | ≤ 0.4× | 3 |",
		"| run --warm, full nginx suite, containers kept by an earlier run (s) | 1.60 | 0.80× | ≤ 1.0× | 1 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("targets table lacks %q:\n%s", want, md)
		}
	}
}
