package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/harness"
	"mtlsconform/runner"
)

const selftestUsage = `mtlsconform selftest: prove the suite catches broken load balancers.

Runs the whole suite against the conformant reference (every scenario must pass, known deviations
aside), then once against each deliberately broken reference ("mutant"). A mutant is caught when at
least one scenario fails on it. Prints each mutant with the scenarios that caught it and the kill rate
(caught / total); exit status 0 only when the reference passes and every mutant is caught.

  mtlsconform selftest [--mutation NAME ...] [--out DIR]`

// mutantResult is one mutant's outcome.
type mutantResult struct {
	Name     string   `json:"name"`
	Doc      string   `json:"doc"`
	Caught   bool     `json:"caught"`
	CaughtBy []string `json:"caught_by"`
	Wall     string   `json:"wall"`
}

type selftestReport struct {
	BaselineFailed []string       `json:"baseline_failed"`
	Mutants        []mutantResult `json:"mutants"`
	Caught         int            `json:"caught"`
	Total          int            `json:"total"`
}

func cmdSelftest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform selftest", stderr, selftestUsage)
	var only stringList
	fs.Var(&only, "mutation", "run only these mutants (repeatable; default all): "+strings.Join(runner.MutationNames(), ", "))
	out := fs.String("out", "out", "`folder` for selftest.md and selftest.json")
	conc := fs.Int("concurrency", 2, "scenarios run at once")
	image := fs.String("nginx-image", envDefault("MTLSCONFORM_NGINX_IMAGE", harness.DefaultNginxImage), "reference load balancer `image`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	mutants := runner.Mutations()
	if len(only) > 0 {
		if err := checkMutations(only); err != nil {
			return err
		}
		var picked []runner.Mutation
		for _, m := range mutants {
			for _, o := range only {
				if m.Name == o {
					picked = append(picked, m)
				}
			}
		}
		mutants = picked
	}
	env, err := harness.Start(ctx, harness.Options{Image: *image, Logf: prefixLogger(stderr, "mtlsconform")})
	if err != nil {
		return &envError{err}
	}
	defer env.Close(context.WithoutCancel(ctx))

	runOnce := func(mutations []string) (contract.RunResult, error) {
		return runner.Run(ctx, runner.RunOptions{
			Target:      &runner.Reference{Shared: env, Mutations: mutations},
			Concurrency: *conc, Output: io.Discard, Format: "progress",
		})
	}
	var rep selftestReport
	base, err := runOnce(nil)
	if err != nil {
		return &envError{err}
	}
	for _, r := range base.Results {
		if r.Status == contract.Failed {
			rep.BaselineFailed = append(rep.BaselineFailed, r.Feature+": "+r.Name)
		}
	}
	fmt.Fprintf(stdout, "reference: %s (%v)\n", baselineWord(rep.BaselineFailed), base.Wall.Round(time.Millisecond))
	for _, m := range mutants {
		res, err := runOnce([]string{m.Name})
		if err != nil {
			return &envError{fmt.Errorf("mutant %s: %w", m.Name, err)}
		}
		mr := mutantResult{Name: m.Name, Doc: m.Doc, Wall: res.Wall.Round(time.Millisecond).String()}
		for _, r := range res.Results {
			// A failure that only says a known deviation went away does not
			// count: the mutant must break a promise of the contract.
			if r.Status == contract.Failed && !r.StaleDeviation {
				mr.CaughtBy = append(mr.CaughtBy, fmt.Sprintf("%s: %s %v", r.Feature, r.Name, r.Clauses))
			}
		}
		mr.Caught = len(mr.CaughtBy) > 0
		rep.Mutants = append(rep.Mutants, mr)
		rep.Total++
		if mr.Caught {
			rep.Caught++
		}
		verdict := "SURVIVED (no scenario failed)"
		if mr.Caught {
			verdict = fmt.Sprintf("caught by %d scenario(s), first: %s", len(mr.CaughtBy), mr.CaughtBy[0])
		}
		fmt.Fprintf(stdout, "%-30s %s\n", m.Name, verdict)
	}
	fmt.Fprintf(stdout, "kill rate: %d/%d (%.0f%%)\n", rep.Caught, rep.Total, 100*float64(rep.Caught)/float64(max(rep.Total, 1)))
	if err := writeSelftest(*out, rep); err != nil {
		return &envError{err}
	}
	if len(rep.BaselineFailed) > 0 || rep.Caught < rep.Total {
		return errChecksFailed
	}
	return nil
}

func baselineWord(failed []string) string {
	if len(failed) == 0 {
		return "passes"
	}
	return "FAILS: " + strings.Join(failed, "; ")
}

func checkMutations(names []string) error {
	known := map[string]bool{}
	for _, n := range runner.MutationNames() {
		known[n] = true
	}
	for _, n := range names {
		if !known[n] {
			return usagef("unknown mutation %q: use one of %s", n, strings.Join(runner.MutationNames(), ", "))
		}
	}
	return nil
}

func writeSelftest(dir string, rep selftestReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "## mtlsconform self-test\n\nReference: %s. Kill rate %d/%d.\n\n| mutant | what it breaks | caught by |\n|---|---|---|\n",
		baselineWord(rep.BaselineFailed), rep.Caught, rep.Total)
	for _, m := range rep.Mutants {
		by := "**survived**"
		if m.Caught {
			by = fmt.Sprintf("%d scenario(s), e.g. %s", len(m.CaughtBy), m.CaughtBy[0])
		}
		fmt.Fprintf(&md, "| `%s` | %s | %s |\n", m.Name, m.Doc, by)
	}
	if err := pki.WriteFileAtomic(filepath.Join(dir, "selftest.json"), js, 0o644); err != nil {
		return err
	}
	return pki.WriteFileAtomic(filepath.Join(dir, "selftest.md"), md.Bytes(), 0o644)
}
