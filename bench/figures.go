package bench

import (
	"encoding/json"
	"fmt"
	"strings"

	"mtlsconform/contract"
)

// Figures are a benchmark's samples and medians, written as bench.json.
type Figures struct {
	Machine            string    `json:"machine"`
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
}

// Markdown is the table of medians against their targets.
func (f *Figures) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s\n\n", f.Machine)
	fmt.Fprintf(&b, "| measure | median | target | runs / samples |\n|---|---|---|---|\n")
	if len(f.ColdWalls) > 0 {
		fmt.Fprintf(&b, "| cold run, images built (s) | %.1f | < 90 | %d |\n", f.ColdMedianS, len(f.ColdWalls))
	}
	fmt.Fprintf(&b, "| warm full suite, %d scenarios (s) | %.2f | < 20 | %d |\n", f.Scenarios, f.WarmMedianS, len(f.WarmWalls))
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
