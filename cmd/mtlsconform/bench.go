package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
	"mtlsconform/runner"
)

const benchUsage = `mtlsconform bench: measure what a run costs, with medians.

  mtlsconform bench [--runs 5] [--cold-runs 1] [--requests 40] [--out out/bench]

Cold runs remove the project's images first (the nginx image is rebuilt from Debian packages);
warm runs reuse them. Per run: wall time and containers started. Per scenario: the cost of a
scenario that shares an already running load balancer. Per request: the harness client against
plain curl, both making a full mutual-TLS handshake to the same running nginx.`

type benchFigures struct {
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

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform bench", stderr, benchUsage)
	runs := fs.Int("runs", 5, "warm full-suite runs")
	coldRuns := fs.Int("cold-runs", 1, "cold runs (images removed first)")
	requests := fs.Int("requests", 40, "requests per client in the curl comparison")
	conc := fs.Int("concurrency", 2, "scenarios run at once")
	out := fs.String("out", "out/bench", "`folder` for bench.md and bench.json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *runs < 1 || *requests < 1 || *coldRuns < 0 {
		return usagef("--runs and --requests must be 1 or more, --cold-runs 0 or more")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		return &envError{fmt.Errorf("curl is needed for the baseline: apt-get install curl (scripts/prereqs.sh installs it)")}
	}
	logf := prefixLogger(stderr, "bench")
	fig := benchFigures{Machine: machine()}
	suite := func() (contract.RunResult, error) {
		return runner.Run(ctx, runner.RunOptions{Concurrency: *conc, Output: io.Discard, Logf: logf})
	}
	for i := range *coldRuns {
		if err := harness.RemoveImages(ctx); err != nil {
			return &envError{err}
		}
		res, err := suite()
		if err != nil {
			return &envError{err}
		}
		fig.ColdWalls = append(fig.ColdWalls, res.Wall.Seconds())
		logf("cold run %d: %.1f s", i+1, res.Wall.Seconds())
	}
	for i := range *runs {
		res, err := suite()
		if err != nil {
			return &envError{err}
		}
		if n := contract.Counts(res.Results)[contract.Failed]; n > 0 {
			return fmt.Errorf("warm run %d: %d scenario(s) failed; benchmark a passing suite: %w", i+1, n, errChecksFailed)
		}
		fig.WarmWalls = append(fig.WarmWalls, res.Wall.Seconds())
		fig.Containers = append(fig.Containers, res.Stats.ContainersStarted)
		fig.Scenarios = len(res.Results)
		for _, r := range res.Results {
			if !r.StartedLoadBalancer && len(r.Calls) > 0 {
				fig.SharedScenarioMS = append(fig.SharedScenarioMS, ms(r.Duration))
			}
		}
		logf("warm run %d: %.2f s, %d containers", i+1, res.Wall.Seconds(), res.Stats.ContainersStarted)
	}
	if err := benchRequests(ctx, &fig, curl, *requests, logf); err != nil {
		return &envError{err}
	}
	fig.ColdMedianS, fig.WarmMedianS = median(fig.ColdWalls), median(fig.WarmWalls)
	fig.SharedScenarioMedM = median(fig.SharedScenarioMS)
	fig.HarnessMedianMS, fig.CurlMedianMS = median(fig.HarnessRequestMS), median(fig.CurlRequestMS)
	md := benchMarkdown(fig)
	fmt.Fprint(stdout, md)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return &envError{err}
	}
	js, _ := json.MarshalIndent(fig, "", "  ")
	if err := pki.WriteFileAtomic(filepath.Join(*out, "bench.json"), js, 0o644); err != nil {
		return &envError{err}
	}
	return pki.WriteFileAtomic(filepath.Join(*out, "bench.md"), []byte(md), 0o644)
}

// benchRequests times the same trusted request made by the harness client
// and by curl against one running reference load balancer.
func benchRequests(ctx context.Context, fig *benchFigures, curl string, n int, logf func(string, ...any)) error {
	env, err := harness.Start(ctx, harness.Options{Logf: logf})
	if err != nil {
		return err
	}
	defer env.Close(context.WithoutCancel(ctx))
	root, err := pki.NewRootCA("Bench Root CA")
	if err != nil {
		return err
	}
	leaf, err := root.IssueClient("bench-partner")
	if err != nil {
		return err
	}
	lb, err := env.LoadBalancer(ctx, harness.LBConfig{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)})
	if err != nil {
		return err
	}
	dir, remove, err := harness.TempDir()
	if err != nil {
		return err
	}
	defer remove()
	files, err := leaf.WriteFiles(dir, "bench", "")
	if err != nil {
		return err
	}
	serverCA := filepath.Join(dir, "server-ca.pem")
	if err := os.WriteFile(serverCA, pki.CertPEM(env.ServerCA.Cert), 0o644); err != nil {
		return err
	}
	caller := env.Caller()
	port := strings.TrimPrefix(lb.URL, "https://127.0.0.1:")
	url := "https://" + harness.ServerName + ":" + port + productapi.ProductsPath
	for i := range n + 2 {
		start := time.Now()
		res, err := caller.Do(ctx, lb.URL, harness.Request{Path: productapi.ProductsPath, Credential: leaf})
		took := time.Since(start)
		if err != nil || res.Status != 200 {
			return fmt.Errorf("harness request: %v %v", err, res)
		}
		start = time.Now()
		cmd := exec.CommandContext(ctx, curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
			"--cert", files.Cert, "--key", files.Key, "--cacert", serverCA,
			"--resolve", harness.ServerName+":"+port+":127.0.0.1", url)
		var out bytes.Buffer
		cmd.Stdout = &out
		err = cmd.Run()
		curlTook := time.Since(start)
		if err != nil || out.String() != "200" {
			return fmt.Errorf("curl request: %v (status %q)", err, out.String())
		}
		if i >= 2 { // the first two warm up caches on both sides
			fig.HarnessRequestMS = append(fig.HarnessRequestMS, ms(took))
			fig.CurlRequestMS = append(fig.CurlRequestMS, ms(curlTook))
		}
	}
	return nil
}

func machine() string {
	model := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				_, model, _ = strings.Cut(line, ":")
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s/%s, %s", runtime.NumCPU(), strings.TrimSpace(model), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func benchMarkdown(f benchFigures) string {
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
