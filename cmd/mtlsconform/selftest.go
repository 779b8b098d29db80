package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"mtlsconform/harness"
	"mtlsconform/lb/all"
	"mtlsconform/output"
	"mtlsconform/runner"
	"mtlsconform/selftest"
)

const selftestUsage = `mtlsconform selftest: prove the suite catches broken load balancers.

Runs the whole suite against the conformant reference (every scenario must pass, known deviations
aside), then once against each deliberately broken reference ("mutant"). A mutant is caught when at
least one scenario fails a check of the contract on it (a timeout or a configuration that would
not start catches nothing). Prints each mutant with the scenarios that caught it and the kill rate
(caught / total); exit status 0 only when the reference passes and every mutant is caught.

With --focused each mutant runs only the scenarios of the clauses it breaks (the catalogue names
them: "… (C1)"), a few times faster: caught so, it is caught by the whole suite too.

  mtlsconform selftest [--mutation NAME ...] [--focused] [--out DIR]`

func cmdSelftest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform selftest", stderr, selftestUsage)
	var only stringList
	fs.Var(&only, "mutation", "run only these mutants (repeatable; default all of the implementation's): "+mutationHelp())
	out := fs.String("out", "out", "`folder` for selftest.md and selftest.json")
	conc := fs.Int("concurrency", runner.DefaultConcurrency, "scenarios run at once")
	focused := fs.Bool("focused", false, "run each mutant against the scenarios of the clauses it breaks only (a few times faster; the reference still runs the whole suite)")
	var ref referenceFlags
	ref.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	impl, err := ref.implementation()
	if err != nil {
		return err
	}
	mutants, err := selftest.Select(impl, only)
	if err != nil {
		return usagef("%v", err)
	}
	rep, err := selftest.Run(ctx, selftest.Options{
		Mutants: mutants, Concurrency: *conc, Focused: *focused,
		Harness: harness.Options{Implementation: impl, Image: ref.image, Logf: prefixLogger(stderr, "mtlsconform"),
			ContainerPerConfig: ref.containerPerConfig, PublishPorts: ref.publishPorts, BackendContainer: ref.backendContainer},
		OnReference: func(failed []string, wall time.Duration) {
			fmt.Fprintf(stdout, "reference: %s (%v)\n", selftest.Baseline(failed), wall.Round(time.Millisecond))
		},
		OnMutant: func(m selftest.MutantResult) { fmt.Fprintf(stdout, "%-30s %s\n", m.Name, mutantVerdict(m)) },
	})
	if err != nil {
		return &envError{err}
	}
	fmt.Fprintf(stdout, "kill rate: %d/%d (%.0f%%)\n", rep.Caught, rep.Total, rep.KillRate())
	files, err := rep.Files()
	if err != nil {
		return &envError{err}
	}
	if err := output.WriteFiles(*out, files); err != nil {
		return &envError{err}
	}
	if !rep.Passed() {
		return errChecksFailed
	}
	return nil
}

// mutantVerdict is the printed line's account of one mutant.
func mutantVerdict(m selftest.MutantResult) string {
	if !m.Caught {
		return "SURVIVED (no scenario failed)"
	}
	return fmt.Sprintf("caught by %d scenario(s), first: %s", len(m.CaughtBy), m.CaughtBy[0])
}

// mutationHelp lists each implementation's mutants for -h.
func mutationHelp() string {
	var parts []string
	for _, impl := range all.Implementations() {
		var names []string
		for _, m := range runner.MutationsOf(impl) {
			names = append(names, m.Name)
		}
		parts = append(parts, impl.Name()+": "+strings.Join(names, ", "))
	}
	return strings.Join(parts, "; ")
}
