// Package bench measures what a run of the suite costs: cold and warm wall
// times, containers started, the cost of a scenario that shares a running
// load balancer, and one mutual-TLS request by the harness client against
// plain curl. Every figure is reported as a median with its samples. Flags
// and printing belong to the command line.
package bench

import (
	"bytes"
	"context"
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
	"mtlsconform/output"
	"mtlsconform/runner"
)

// Options configure a benchmark.
type Options struct {
	Runs        int // warm full-suite runs
	ColdRuns    int // runs after removing the project's images
	Requests    int // requests per client in the curl comparison
	Concurrency int // scenarios run at once
	// Curl is the curl executable the harness client is compared with.
	Curl string
	Logf func(format string, args ...any)
}

// SuiteFailedError means a warm run had failing scenarios: a benchmark of
// a failing suite measures the wrong thing.
type SuiteFailedError struct {
	Run, Failed int
}

func (e *SuiteFailedError) Error() string {
	return fmt.Sprintf("warm run %d: %d scenario(s) failed; benchmark a passing suite", e.Run, e.Failed)
}

// Run takes the measurements and their medians.
func Run(ctx context.Context, o Options) (*Figures, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	fig := &Figures{Machine: Machine()}
	suite := func() (contract.RunResult, error) {
		return runner.Run(ctx, runner.RunOptions{Concurrency: o.Concurrency, Output: io.Discard, Logf: logf})
	}
	for i := range o.ColdRuns {
		if err := harness.RemoveImages(ctx); err != nil {
			return nil, fmt.Errorf("cold run %d: %w", i+1, err)
		}
		res, err := suite()
		if err != nil {
			return nil, fmt.Errorf("cold run %d: %w", i+1, err)
		}
		fig.ColdWalls = append(fig.ColdWalls, res.Wall.Seconds())
		logf("cold run %d: %.1f s", i+1, res.Wall.Seconds())
	}
	for i := range o.Runs {
		res, err := suite()
		if err != nil {
			return nil, fmt.Errorf("warm run %d: %w", i+1, err)
		}
		if n := contract.Counts(res.Results)[contract.Failed]; n > 0 {
			return nil, &SuiteFailedError{Run: i + 1, Failed: n}
		}
		fig.addWarm(res)
		logf("warm run %d: %.2f s, %d containers", i+1, res.Wall.Seconds(), res.Stats.ContainersStarted)
	}
	if err := requests(ctx, fig, o.Curl, o.Requests, logf); err != nil {
		return nil, fmt.Errorf("compare one request with curl: %w", err)
	}
	fig.medians()
	return fig, nil
}

// requests times the same trusted request made by the harness client and
// by curl against one running reference load balancer.
func requests(ctx context.Context, fig *Figures, curl string, n int, logf func(string, ...any)) error {
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
	// curl reads the credential from files: the key is a credential file,
	// written by pki; the server CA is a plain output.
	files, err := leaf.WriteFiles(dir, "bench", "")
	if err != nil {
		return err
	}
	serverCA := filepath.Join(dir, "server-ca.pem")
	if err := output.WriteFile(serverCA, pki.CertPEM(env.ServerCA.Cert)); err != nil {
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

// Machine describes the machine the figures were taken on: cores, CPU
// model, platform and Go version.
func Machine() string {
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
