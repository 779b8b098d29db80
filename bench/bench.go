// Package bench measures what a run of the suite costs: cold and warm wall
// times, containers started, the cost of a scenario that shares a running
// load balancer, one mutual-TLS request by the harness client against
// plain curl, and the core clauses checked by the harness against the
// same clauses checked by a shell script (baseline.sh), with a breakdown
// of where a harness run spends its time. Every figure is reported as a
// median with its samples. Flags and printing belong to the command line.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
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
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/output"
	"mtlsconform/partner"
	"mtlsconform/runner"
)

// Options configure a benchmark.
type Options struct {
	Runs        int // warm full-suite runs
	ColdRuns    int // runs after removing the project's images
	Requests    int // requests per client in the curl comparison
	Concurrency int // scenarios run at once
	// SuiteTags, when set, narrow "the full suite" (the warm and cold
	// runs, the whole-process run) to the scenarios of a godog tag
	// expression: a team's own subset, or a quick check of the bench.
	SuiteTags string
	// BaselineRuns is how often the shell-script baseline runs; as often
	// as the core-tag harness run (Runs) when 0.
	BaselineRuns int
	// Curl is the curl executable the harness client is compared with.
	Curl string
	// Self is the mtlsconform executable: when set, the full suite, the
	// single scenario and the matrix are also timed as whole processes,
	// as a user runs them.
	Self string
	// MatrixRuns is how often the matrix of every implementation runs
	// (needs Self).
	MatrixRuns int
	// WarmRuns is how often the full suite and the single scenario run
	// again with --warm, on the containers a first such run kept (needs
	// Self; never in CI, which refuses --warm). The bench's kept
	// containers are its own and go when it ends.
	WarmRuns int
	// ConfigRuns is how many further configurations are timed per
	// implementation, as slots and as containers.
	ConfigRuns int
	// ConfigImpls names the implementations whose configuration cost is
	// timed; all when empty.
	ConfigImpls []lb.Implementation
	Logf        func(format string, args ...any)
}

// CoreTags are the clauses the shell-script baseline checks too; SingleTags
// select the smallest run worth timing.
const (
	CoreTags   = "@C1,@C2,@C4,@C5,@C6,@C8,@C9,@C10"
	SingleTags = "@C1"
)

// SuiteFailedError means a run had failing scenarios: a benchmark of a
// failing suite measures the wrong thing.
type SuiteFailedError struct {
	Run, Failed int
	What        string // "core-tag run"; "warm run" when empty
}

func (e *SuiteFailedError) Error() string {
	what := e.What
	if what == "" {
		what = "warm run"
	}
	return fmt.Sprintf("%s %d: %d scenario(s) failed; benchmark a passing suite", what, e.Run, e.Failed)
}

// Run takes the measurements and their medians.
func Run(ctx context.Context, o Options) (*Figures, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	fig := &Figures{Machine: Machine(), Docker: dockerVersion(ctx), SuiteTags: o.SuiteTags}
	suite := func() (contract.RunResult, error) {
		return runner.Run(ctx, runner.RunOptions{Concurrency: o.Concurrency, Output: io.Discard, Logf: logf, Tags: o.SuiteTags})
	}
	for i := range o.ColdRuns {
		if err := harness.RemoveImages(ctx, all.Implementations()); err != nil {
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
	if err := processes(ctx, fig, o, logf); err != nil {
		return nil, err
	}
	if o.ConfigRuns > 0 {
		impls := o.ConfigImpls
		if len(impls) == 0 {
			impls = all.Implementations()
		}
		costs, err := configCosts(ctx, impls, o.ConfigRuns, logf)
		if err != nil {
			return nil, fmt.Errorf("cost of a configuration: %w", err)
		}
		fig.ConfigCosts = costs
	}
	last, err := againstBaseline(ctx, fig, o, logf)
	if err != nil {
		return nil, err
	}
	probe, err := requests(ctx, fig, o.Curl, o.Requests, logf)
	if err != nil {
		return nil, fmt.Errorf("compare one request with curl: %w", err)
	}
	b := breakDown(CoreTags, max(o.Concurrency, 1), last.start, last.end, last.res, probe)
	fig.Probe, fig.Breakdown = &probe, &b
	fig.medians()
	return fig, nil
}

// processes times whole mtlsconform processes: the full suite and the
// single scenario (Runs times each), the matrix (MatrixRuns times).
func processes(ctx context.Context, fig *Figures, o Options, logf func(string, ...any)) error {
	if o.Self == "" {
		return nil
	}
	full := []string{"run"}
	if o.SuiteTags != "" {
		full = append(full, "--tags", o.SuiteTags)
	}
	for _, p := range []struct {
		what  string
		runs  int
		walls *[]float64
		args  []string
	}{
		{"full suite, whole process", o.Runs, &fig.FullProcessWalls, full},
		{"single scenario, whole process", o.Runs, &fig.SingleProcessWalls, []string{"run", "--tags", SingleTags}},
		{"matrix, whole process", o.MatrixRuns, &fig.MatrixWalls, []string{"matrix"}},
	} {
		if p.walls == &fig.SingleProcessWalls && o.SuiteTags == SingleTags {
			// The same command as the full-suite row's: timed there.
			fig.SingleProcessWalls = slices.Clone(fig.FullProcessWalls)
			continue
		}
		for i := range p.runs {
			took, err := process(ctx, o.Self, nil, p.args...)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", p.what, i+1, err)
			}
			*p.walls = append(*p.walls, took)
			logf("%s %d: %.2f s", p.what, i+1, took)
		}
	}
	return warmProcesses(ctx, fig, o, append(full, "--warm"), logf)
}

// warmProcesses times the single scenario and the full suite with
// --warm: a first run (not timed) keeps its containers, the timed ones
// find them. The bench's kept containers live under a cache folder of its
// own, so they are neither a developer's nor left behind.
func warmProcesses(ctx context.Context, fig *Figures, o Options, full []string, logf func(string, ...any)) (err error) {
	if o.WarmRuns == 0 {
		return nil
	}
	cache, remove, err := harness.TempDir()
	if err != nil {
		return err
	}
	defer remove()
	defer func() { err = errors.Join(err, harness.RemoveKept(context.WithoutCancel(ctx), cache)) }()
	env := []string{"XDG_CACHE_HOME=" + cache}
	single := []string{"run", "--warm", "--tags", SingleTags}
	if _, err := process(ctx, o.Self, env, single...); err != nil {
		return fmt.Errorf("the first run with --warm: %w", err)
	}
	for _, p := range []struct {
		what  string
		walls *[]float64
		args  []string
	}{
		{"single scenario, --warm", &fig.WarmSingleProcessWalls, single},
		{"full suite, --warm", &fig.WarmFullProcessWalls, full},
	} {
		for i := range o.WarmRuns {
			took, err := process(ctx, o.Self, env, p.args...)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", p.what, i+1, err)
			}
			*p.walls = append(*p.walls, took)
			logf("%s %d: %.2f s", p.what, i+1, took)
		}
	}
	return nil
}

// timedRun is a harness run timed from outside: from the call to the
// return, which includes the teardown that RunResult.Wall leaves out.
type timedRun struct {
	start, end time.Time
	res        contract.RunResult
}

func (t timedRun) seconds() float64 { return t.end.Sub(t.start).Seconds() }

func runTimed(ctx context.Context, o runner.RunOptions) (timedRun, error) {
	start := time.Now()
	res, err := runner.Run(ctx, o)
	return timedRun{start: start, end: time.Now(), res: res}, err
}

// againstBaseline times the shell-script baseline and the harness on the
// same clauses, in turns so that a machine getting busier or quieter
// weighs on both alike, then the single-scenario run. It returns the last
// core-tag run, to be broken down.
func againstBaseline(ctx context.Context, fig *Figures, o Options, logf func(string, ...any)) (timedRun, error) {
	if err := checkBaselineTools(); err != nil {
		return timedRun{}, err
	}
	baselineRuns := o.BaselineRuns
	if baselineRuns < 1 {
		baselineRuns = o.Runs
	}
	image := all.Default().Image()
	// The script assumes the image is there, as a platform team's would.
	if _, err := harness.EnsureImage(ctx, all.Default(), logf); err != nil {
		return timedRun{}, err
	}
	tagged := func(tags string) runner.RunOptions {
		return runner.RunOptions{Tags: tags, Concurrency: o.Concurrency, Output: io.Discard, Logf: logf}
	}
	var last timedRun
	for i := range max(o.Runs, baselineRuns) {
		if i < baselineRuns {
			took, err := runBaseline(ctx, image, i+1)
			if err != nil {
				return timedRun{}, fmt.Errorf("baseline run %d: %w", i+1, err)
			}
			fig.BaselineWalls = append(fig.BaselineWalls, took.Seconds())
			logf("baseline run %d: %.2f s", i+1, took.Seconds())
		}
		if i < o.Runs {
			run, err := runTimed(ctx, tagged(CoreTags))
			if err != nil {
				return timedRun{}, fmt.Errorf("core-tag run %d: %w", i+1, err)
			}
			if n := contract.Counts(run.res.Results)[contract.Failed]; n > 0 {
				return timedRun{}, &SuiteFailedError{Run: i + 1, Failed: n, What: "core-tag run"}
			}
			fig.CoreWalls = append(fig.CoreWalls, run.seconds())
			fig.CoreScenarios = len(run.res.Results)
			logf("core-tag run %d: %.2f s, %d scenarios", i+1, run.seconds(), len(run.res.Results))
			last = run
		}
	}
	for i := range o.Runs {
		run, err := runTimed(ctx, tagged(SingleTags))
		if err != nil {
			return timedRun{}, fmt.Errorf("single-scenario run %d: %w", i+1, err)
		}
		if n := contract.Counts(run.res.Results)[contract.Failed]; n > 0 {
			return timedRun{}, &SuiteFailedError{Run: i + 1, Failed: n, What: "single-scenario run"}
		}
		fig.SingleWalls = append(fig.SingleWalls, run.seconds())
		fig.SingleScenarios = len(run.res.Results)
		logf("single-scenario run %d: %.2f s", i+1, run.seconds())
	}
	return last, nil
}

// requests times the same trusted request made by the harness client and
// by curl against one running reference load balancer. On the way it
// probes what a run does not time itself (images, start, one load
// balancer, close, PKI), for the breakdown.
func requests(ctx context.Context, fig *Figures, curl string, n int, logf func(string, ...any)) (Probe, error) {
	var p Probe
	serverPKI, clientPKI, err := timePKI()
	if err != nil {
		return p, err
	}
	p.ServerPKIMS, p.ClientPKIMS = ms(serverPKI), ms(clientPKI)
	start := time.Now()
	if _, err := harness.EnsureImage(ctx, all.Default(), logf); err != nil {
		return p, err
	}
	if _, _, err := harness.EnsureBackendImage(ctx, all.Default()); err != nil {
		return p, err
	}
	p.ImagesMS = ms(time.Since(start))
	start = time.Now()
	env, err := harness.Start(ctx, harness.Options{Implementation: all.Default(), Logf: logf})
	if err != nil {
		return p, err
	}
	p.StartMS = ms(time.Since(start))
	defer env.Close(context.WithoutCancel(ctx))
	root, err := pki.NewRootCA("Bench Root CA")
	if err != nil {
		return p, err
	}
	leaf, err := root.IssueClient("bench-partner")
	if err != nil {
		return p, err
	}
	start = time.Now()
	bal, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)})
	if err != nil {
		return p, err
	}
	p.LBStartMS = ms(time.Since(start))
	dir, remove, err := harness.TempDir()
	if err != nil {
		return p, err
	}
	defer remove()
	// curl reads the credential from files: the key is a credential file,
	// written by pki; the server CA is a plain output.
	files, err := leaf.WriteFiles(dir, "bench", "")
	if err != nil {
		return p, err
	}
	serverCA := filepath.Join(dir, "server-ca.pem")
	if err := output.WriteFile(serverCA, pki.CertPEM(env.ServerCA.Cert)); err != nil {
		return p, err
	}
	caller := env.Caller()
	// curl names the balancer as partners do and is told its address.
	lbURL, err := neturl.Parse(bal.URL)
	if err != nil {
		return p, err
	}
	port := lbURL.Port()
	url := "https://" + lb.ServerName + ":" + port + productapi.ProductsPath
	for i := range n + 2 {
		start := time.Now()
		res, err := caller.Do(ctx, bal.URL, partner.Request{Path: productapi.ProductsPath, Credential: leaf})
		took := time.Since(start)
		if err != nil || res.Status != 200 {
			return p, fmt.Errorf("harness request: %v %v", err, res)
		}
		start = time.Now()
		cmd := exec.CommandContext(ctx, curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
			"--cert", files.Cert, "--key", files.Key, "--cacert", serverCA,
			"--resolve", lb.ServerName+":"+port+":"+lbURL.Hostname(), url)
		var out bytes.Buffer
		cmd.Stdout = &out
		err = cmd.Run()
		curlTook := time.Since(start)
		if err != nil || out.String() != "200" {
			return p, fmt.Errorf("curl request: %v (status %q)", err, out.String())
		}
		if i >= 2 { // the first two warm up caches on both sides
			fig.HarnessRequestMS = append(fig.HarnessRequestMS, ms(took))
			fig.CurlRequestMS = append(fig.CurlRequestMS, ms(curlTook))
		}
	}
	start = time.Now()
	err = env.Close(context.WithoutCancel(ctx))
	p.CloseMS = ms(time.Since(start))
	return p, err
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
// model, memory (where /proc says), platform and Go version.
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
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s, %s", runtime.NumCPU(), strings.TrimSpace(model), mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
