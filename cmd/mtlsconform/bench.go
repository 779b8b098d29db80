package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"mtlsconform/bench"
	"mtlsconform/output"
	"mtlsconform/runner"
)

const benchUsage = `mtlsconform bench: measure what a run costs, with medians.

  mtlsconform bench [--runs 5] [--cold-runs 1] [--baseline-runs N] [--requests 40] [--out out/bench]

Cold runs remove the project's images first (the nginx image is rebuilt from Debian packages);
warm runs reuse them. Per run: wall time and containers started. Per scenario: the cost of a
scenario that shares an already running load balancer. Per request: the harness client against
plain curl, both making a full mutual-TLS handshake to the same running nginx.

Against a shell script: the embedded bench/baseline.sh (docker, openssl and curl only) checks
clauses C1 C2 C4 C5 C6 C8 C9 C10 against two nginx containers it starts; the harness runs the
same clauses (--runs times, in turns with the script) and @C1 alone (--runs times). Each is timed
from the call to its containers removed; the table gives the medians and their ratio, and a
breakdown of one harness run (measured phases, and the parts estimated from a separate probe).

As a user runs it: the full suite and @C1 (--runs times each) and the matrix of every
implementation (--matrix-runs times), each a whole mtlsconform process. Per implementation: what
a further configuration costs once the first runs, as a slot of the shared balancer (a reload)
and as a container of its own (--config-runs samples each; --config-impl picks implementations).`

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform bench", stderr, benchUsage)
	runs := fs.Int("runs", 5, "warm full-suite runs")
	suiteTags := fs.String("suite-tags", "", "narrow the full-suite figures to a godog tag `expression` (a team's subset; default: the whole suite)")
	coldRuns := fs.Int("cold-runs", 1, "cold runs (images removed first)")
	requests := fs.Int("requests", 40, "requests per client in the curl comparison")
	baselineRuns := fs.Int("baseline-runs", 0, "shell-script baseline runs (0: as many as --runs)")
	conc := fs.Int("concurrency", runner.DefaultConcurrency, "scenarios run at once (as in mtlsconform run)")
	matrixRuns := fs.Int("matrix-runs", 3, "runs of the matrix of every implementation, each a whole process")
	configRuns := fs.Int("config-runs", 5, "further configurations timed per implementation, as slots and as containers")
	warmRuns := fs.Int("warm-runs", -1, "runs of the full suite and of @C1 with --warm, on containers a first such run kept (default: as many as --runs; none in CI, which refuses --warm)")
	var configImpls stringList
	fs.Var(&configImpls, "config-impl", "implementations whose configuration cost is timed (repeatable or comma-separated; default all): "+strings.Join(implNames(), ", "))
	out := fs.String("out", "out/bench", "`folder` for bench.md and bench.json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *runs < 1 || *requests < 1 || *coldRuns < 0 || *baselineRuns < 0 || *matrixRuns < 0 || *configRuns < 0 {
		return usagef("--runs and --requests must be 1 or more, --cold-runs, --baseline-runs, --matrix-runs and --config-runs 0 or more")
	}
	if *warmRuns < 0 {
		*warmRuns = *runs
		if inCI() {
			*warmRuns = 0
		}
	} else if err := checkWarm(*warmRuns > 0); err != nil {
		return err
	}
	impls, err := lookupImplementations("--config-impl", configImpls)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return &envError{fmt.Errorf("find this program, to time it as a whole process: %w", err)}
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		return &envError{errors.New("curl is needed for the baseline: apt-get install curl (scripts/prereqs.sh installs it)")}
	}
	fig, err := bench.Run(ctx, bench.Options{
		Runs: *runs, SuiteTags: *suiteTags, ColdRuns: *coldRuns, BaselineRuns: *baselineRuns, Requests: *requests, Concurrency: *conc,
		Curl: curl, Self: self, MatrixRuns: *matrixRuns, ConfigRuns: *configRuns, ConfigImpls: impls, WarmRuns: *warmRuns, Logf: prefixLogger(stderr, "bench"),
	})
	var failed *bench.SuiteFailedError
	if errors.As(err, &failed) {
		return fmt.Errorf("%w: %w", err, errChecksFailed)
	} else if err != nil {
		return &envError{err}
	}
	fmt.Fprint(stdout, fig.Markdown())
	files, err := fig.Files()
	if err != nil {
		return &envError{err}
	}
	if err := output.WriteFiles(*out, files); err != nil {
		return &envError{err}
	}
	return nil
}
