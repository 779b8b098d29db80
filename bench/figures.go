package bench

import (
	"encoding/json"
	"fmt"
	"strings"

	"mtlsconform/contract"
	"mtlsconform/lb/all"
)

// Figures are a benchmark's samples and medians, written as bench.json.
type Figures struct {
	Machine string `json:"machine"`
	// SuiteTags narrowed "the full suite" to a subset when set.
	SuiteTags          string    `json:"suite_tags,omitempty"`
	ColdWalls          []float64 `json:"cold_walls_s"`
	WarmWalls          []float64 `json:"warm_walls_s"`
	Containers         []int     `json:"containers_per_run"`
	Scenarios          int       `json:"scenarios"`
	SharedScenarioMS   []float64 `json:"shared_scenario_ms"`
	HarnessRequestMS   []float64 `json:"harness_request_ms"`
	CurlRequestMS      []float64 `json:"curl_request_ms"`
	ColdMedianS        float64   `json:"cold_median_s"`
	WarmMedianS        float64   `json:"warm_median_s"`
	SharedScenarioMedM float64   `json:"shared_scenario_median_ms"`
	HarnessMedianMS    float64   `json:"harness_request_median_ms"`
	CurlMedianMS       float64   `json:"curl_request_median_ms"`

	// The same clauses checked by a shell script and by the harness, each
	// timed from the call to the containers removed.
	Docker           string    `json:"docker,omitempty"` // the Docker server's version
	BaselineWalls    []float64 `json:"baseline_walls_s,omitempty"`
	CoreWalls        []float64 `json:"core_walls_s,omitempty"`
	CoreScenarios    int       `json:"core_scenarios,omitempty"`
	SingleWalls      []float64 `json:"single_walls_s,omitempty"`
	SingleScenarios  int       `json:"single_scenarios,omitempty"`
	BaselineMedianS  float64   `json:"baseline_median_s,omitempty"`
	CoreMedianS      float64   `json:"core_median_s,omitempty"`
	SingleMedianS    float64   `json:"single_median_s,omitempty"`
	CoreOverBaseline float64   `json:"core_over_baseline,omitempty"` // ratio of the medians
	// Whole mtlsconform processes, as a user runs them.
	FullProcessWalls     []float64 `json:"full_process_walls_s,omitempty"`
	SingleProcessWalls   []float64 `json:"single_process_walls_s,omitempty"`
	MatrixWalls          []float64 `json:"matrix_walls_s,omitempty"`
	FullProcessMedianS   float64   `json:"full_process_median_s,omitempty"`
	SingleProcessMedianS float64   `json:"single_process_median_s,omitempty"`
	MatrixMedianS        float64   `json:"matrix_median_s,omitempty"`
	// The same with --warm, on containers an earlier run kept.
	WarmSingleProcessWalls   []float64 `json:"warm_single_process_walls_s,omitempty"`
	WarmFullProcessWalls     []float64 `json:"warm_full_process_walls_s,omitempty"`
	WarmSingleProcessMedianS float64   `json:"warm_single_process_median_s,omitempty"`
	WarmFullProcessMedianS   float64   `json:"warm_full_process_median_s,omitempty"`
	WarmSingleOverBaseline   float64   `json:"warm_single_over_baseline,omitempty"`
	WarmFullOverBaseline     float64   `json:"warm_full_over_baseline,omitempty"`
	// The same medians over the shell script's of the same bench run:
	// absolute figures do not carry from one machine to another, these do.
	FullOverBaseline   float64 `json:"full_over_baseline,omitempty"`
	SingleOverBaseline float64 `json:"single_over_baseline,omitempty"`
	MatrixOverBaseline float64 `json:"matrix_over_baseline,omitempty"`
	// ConfigCosts: a further configuration, per implementation and way.
	ConfigCosts []ConfigCost `json:"config_costs,omitempty"`
	// Breakdown is of the last core-tag run; Probe holds what was timed
	// apart for it.
	Breakdown *Breakdown `json:"breakdown,omitempty"`
	Probe     *Probe     `json:"probe,omitempty"`
}

// addWarm records one warm run: its wall time, its containers, and each
// scenario that shared a load balancer another scenario started (those
// that called nothing measure only the harness).
func (f *Figures) addWarm(res contract.RunResult) {
	f.WarmWalls = append(f.WarmWalls, res.Wall.Seconds())
	f.Containers = append(f.Containers, res.Stats.ContainersStarted)
	f.Scenarios = len(res.Results)
	for _, r := range res.Results {
		if !r.StartedLoadBalancer && len(r.Calls) > 0 {
			f.SharedScenarioMS = append(f.SharedScenarioMS, ms(r.Duration))
		}
	}
}

func (f *Figures) medians() {
	f.ColdMedianS, f.WarmMedianS = median(f.ColdWalls), median(f.WarmWalls)
	f.SharedScenarioMedM = median(f.SharedScenarioMS)
	f.HarnessMedianMS, f.CurlMedianMS = median(f.HarnessRequestMS), median(f.CurlRequestMS)
	f.BaselineMedianS, f.CoreMedianS = median(f.BaselineWalls), median(f.CoreWalls)
	f.SingleMedianS = median(f.SingleWalls)
	f.CoreOverBaseline = ratio(f.CoreMedianS, f.BaselineMedianS)
	f.FullProcessMedianS, f.SingleProcessMedianS = median(f.FullProcessWalls), median(f.SingleProcessWalls)
	f.MatrixMedianS = median(f.MatrixWalls)
	f.FullOverBaseline = ratio(f.FullProcessMedianS, f.BaselineMedianS)
	f.SingleOverBaseline = ratio(f.SingleProcessMedianS, f.BaselineMedianS)
	f.MatrixOverBaseline = ratio(f.MatrixMedianS, f.BaselineMedianS)
	f.WarmSingleProcessMedianS, f.WarmFullProcessMedianS = median(f.WarmSingleProcessWalls), median(f.WarmFullProcessWalls)
	f.WarmSingleOverBaseline = ratio(f.WarmSingleProcessMedianS, f.BaselineMedianS)
	f.WarmFullOverBaseline = ratio(f.WarmFullProcessMedianS, f.BaselineMedianS)
}

// ratio is a/b, or 0 when there is no b to compare with.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// suiteName is what the "full suite" figures ran: the suite, or the
// subset --suite-tags chose.
func (f *Figures) suiteName() string {
	if f.SuiteTags != "" {
		return "suite " + f.SuiteTags
	}
	return "full suite"
}

// Markdown is the table of medians against their targets.
func (f *Figures) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s\n", f.Machine)
	if f.Docker != "" {
		fmt.Fprintf(&b, "Docker: %s\n", f.Docker)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "| measure | median | target | runs / samples |\n|---|---|---|---|\n")
	if len(f.ColdWalls) > 0 {
		fmt.Fprintf(&b, "| cold run, images built (s) | %.1f | < 90 | %d |\n", f.ColdMedianS, len(f.ColdWalls))
	}
	fmt.Fprintf(&b, "| warm %s, %d scenarios (s) | %.2f | < 20 | %d |\n", f.suiteName(), f.Scenarios, f.WarmMedianS, len(f.WarmWalls))
	cs := make([]float64, len(f.Containers))
	for i, c := range f.Containers {
		cs[i] = float64(c)
	}
	fmt.Fprintf(&b, "| containers started per run | %.0f | | %d |\n", median(cs), len(cs))
	fmt.Fprintf(&b, "| scenario sharing a running load balancer (ms) | %.1f | < 150 | %d |\n", f.SharedScenarioMedM, len(f.SharedScenarioMS))
	fmt.Fprintf(&b, "| one mTLS request, harness client (ms) | %.2f | ≤ 3× curl | %d |\n", f.HarnessMedianMS, len(f.HarnessRequestMS))
	fmt.Fprintf(&b, "| one mTLS request, plain curl (ms) | %.2f | | %d |\n", f.CurlMedianMS, len(f.CurlRequestMS))
	if f.CurlMedianMS > 0 {
		fmt.Fprintf(&b, "\nHarness client / curl: %.2f×\n", f.HarnessMedianMS/f.CurlMedianMS)
	}
	if len(f.BaselineWalls) > 0 || len(f.CoreWalls) > 0 {
		b.WriteString("\n" + f.baselineMarkdown())
	}
	if t := f.targetsMarkdown(); t != "" {
		b.WriteString("\n" + t)
	}
	if len(f.ConfigCosts) > 0 {
		b.WriteString("\n" + f.configMarkdown())
	}
	if f.Breakdown != nil {
		b.WriteString("\n" + f.Breakdown.markdown())
	}
	return b.String()
}

// baselineMarkdown compares the harness with the shell script on the
// clauses both check; every wall runs from the call to the containers
// removed.
func (f *Figures) baselineMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Against a shell script (bench/baseline.sh: docker, openssl, curl) on the clauses both check (%s); "+
		"each wall runs from the call to its containers removed:\n\n", CoreTags)
	b.WriteString("| measure | median (s) | runs |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| shell-script baseline: 2 nginx, 9 curl checks | %.2f | %d |\n", f.BaselineMedianS, len(f.BaselineWalls))
	fmt.Fprintf(&b, "| harness, core tags: %d scenarios | %.2f | %d |\n", f.CoreScenarios, f.CoreMedianS, len(f.CoreWalls))
	if len(f.SingleWalls) > 0 {
		fmt.Fprintf(&b, "| harness, %s: %d scenario(s) | %.2f | %d |\n", SingleTags, f.SingleScenarios, f.SingleMedianS, len(f.SingleWalls))
	}
	if f.CoreOverBaseline > 0 {
		fmt.Fprintf(&b, "\nHarness / shell script (medians): %.2f×\n", f.CoreOverBaseline)
	}
	return b.String()
}

// Files returns bench.json and bench.md by name, for output.WriteFiles.
func (f *Figures) Files() (map[string][]byte, error) {
	js, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the benchmark figures: %w", err)
	}
	return map[string][]byte{"bench.json": js, "bench.md": []byte(f.Markdown())}, nil
}

// targetsMarkdown sets the figures a user feels against the speed
// targets: whole processes, each also as a ratio to the shell script of
// the same bench run (the targets are ratios: absolute times do not carry
// from one machine to another), and a further configuration of the
// reference.
func (f *Figures) targetsMarkdown() string {
	nginxSuite := strings.Replace(f.suiteName(), "suite", "nginx suite", 1)
	type row struct {
		what, value, ratio, target string
		n                          int
	}
	over := func(r float64) string {
		if r <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", r)
	}
	var rows []row
	if len(f.SingleProcessWalls) > 0 {
		rows = append(rows, row{"run --tags " + SingleTags + ", whole process (s)", fmt.Sprintf("%.2f", f.SingleProcessMedianS), over(f.SingleOverBaseline), "≤ 0.4×", len(f.SingleProcessWalls)})
	}
	if len(f.WarmSingleProcessWalls) > 0 {
		rows = append(rows, row{"run --warm --tags " + SingleTags + ", containers kept by an earlier run (s)", fmt.Sprintf("%.2f", f.WarmSingleProcessMedianS), over(f.WarmSingleOverBaseline), "≤ 0.4×", len(f.WarmSingleProcessWalls)})
	}
	if f.CoreOverBaseline > 0 {
		rows = append(rows, row{"core tags, in process (s)", fmt.Sprintf("%.2f", f.CoreMedianS), over(f.CoreOverBaseline), "≤ 1.0×", len(f.CoreWalls)})
	}
	if len(f.FullProcessWalls) > 0 {
		rows = append(rows, row{nginxSuite + ", whole process (s)", fmt.Sprintf("%.2f", f.FullProcessMedianS), over(f.FullOverBaseline), "≤ 1.0×", len(f.FullProcessWalls)})
	}
	if len(f.WarmFullProcessWalls) > 0 {
		rows = append(rows, row{"run --warm, " + nginxSuite + ", containers kept by an earlier run (s)", fmt.Sprintf("%.2f", f.WarmFullProcessMedianS), over(f.WarmFullOverBaseline), "≤ 1.0×", len(f.WarmFullProcessWalls)})
	}
	if len(f.MatrixWalls) > 0 {
		rows = append(rows, row{"matrix of every implementation, whole process (s)", fmt.Sprintf("%.2f", f.MatrixMedianS), over(f.MatrixOverBaseline), "≤ 3×", len(f.MatrixWalls)})
	}
	for _, c := range f.ConfigCosts {
		if c.Implementation == (all.Default()).Name() && len(c.SlotMS) > 0 {
			rows = append(rows, row{"a further nginx configuration, back to back (balancer idle) (ms)",
				fmt.Sprintf("%.0f (%.0f)", c.SlotMedianMS, c.SlotIdleMedianMS), "—", "", len(c.SlotMS)})
		}
	}
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Against the speed targets (medians; the shell script of this run took %.2f s):\n\n", f.BaselineMedianS)
	b.WriteString("| measure | median | / shell script | target | runs / samples |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d |\n", r.what, r.value, r.ratio, r.target, r.n)
	}
	return b.String()
}

// configMarkdown compares the two ways of serving a further
// configuration, per implementation.
func (f *Figures) configMarkdown() string {
	var b strings.Builder
	b.WriteString("A further configuration once the first runs, from asking for it to a TLS handshake with it " +
		"(medians, ms); asked for as soon as the previous one served, or " + slotPause.String() + " after:\n\n" +
		"| implementation | slot (or process), back to back | slot (or process), balancer idle | container of its own | the harness uses |\n|---|---|---|---|---|\n")
	for _, c := range f.ConfigCosts {
		slot, idle := "—", "—"
		if len(c.SlotMS) > 0 {
			slot, idle = fmt.Sprintf("%.0f", c.SlotMedianMS), fmt.Sprintf("%.0f", c.SlotIdleMedianMS)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %s |\n", c.Implementation, slot, idle, c.ContainerMedianMS, c.Kept)
	}
	return b.String()
}
