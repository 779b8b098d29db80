// Package selftest proves the suite catches broken load balancers: it runs
// the whole suite against the conformant reference, then once against each
// deliberately broken reference (a "mutant"), and scores which mutants the
// suite caught. Choosing the mutants from flags, printing and the exit
// status belong to the command line.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"mtlsconform/contract"
	"mtlsconform/harness"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/runner"
)

// Options configure a self-test.
type Options struct {
	// Mutants to run, in order; see runner.Mutations.
	Mutants     []runner.Mutation
	Concurrency int
	// Focused runs each mutant against the scenarios of the clauses it
	// breaks only (runner.Mutation.Clauses), a few times faster; the
	// reference still runs the whole suite. A mutant caught so is caught
	// by the whole suite too.
	Focused bool
	// Harness configures the one environment the reference and every
	// mutant share.
	Harness harness.Options
	// OnReference and OnMutant, when set, hear each outcome as soon as it
	// is known: the whole self-test takes minutes.
	OnReference func(failed []string, wall time.Duration)
	OnMutant    func(MutantResult)
}

// suiteFunc runs the suite once against the reference broken by mutations
// (none: the conformant reference), with the scenarios of tags (a godog
// tag expression; empty: all).
type suiteFunc func(mutations []string, tags string) (contract.RunResult, error)

// Run runs the reference and each mutant in one shared environment and
// scores them. An error means the self-test could not run (no Docker);
// failures of the suite are in the Report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Harness.Implementation == nil {
		o.Harness.Implementation = all.Default()
	}
	env, err := harness.Start(ctx, o.Harness)
	if err != nil {
		return nil, err
	}
	defer env.Close(context.WithoutCancel(ctx))
	return score(o, func(mutations []string, tags string) (contract.RunResult, error) {
		return runner.Run(ctx, runner.RunOptions{
			Target:      &runner.Reference{Shared: env, Mutations: mutations, KeepLoadBalancers: o.Focused},
			Concurrency: o.Concurrency, Output: io.Discard, Format: "progress", Tags: tags,
		})
	})
}

// score runs the reference and then each mutant through suite.
func score(o Options, suite suiteFunc) (*Report, error) {
	base, err := suite(nil, "")
	if err != nil {
		return nil, fmt.Errorf("run the suite against the reference: %w", err)
	}
	rep := &Report{BaselineFailed: baselineFailures(base)}
	if o.OnReference != nil {
		o.OnReference(rep.BaselineFailed, base.Wall)
	}
	if o.Focused {
		if err := scoreAtOnce(o, suite, rep); err != nil {
			return nil, err
		}
		return rep, nil
	}
	for _, m := range o.Mutants {
		res, err := suite([]string{m.Name}, "")
		if err != nil {
			return nil, fmt.Errorf("mutant %s: %w", m.Name, err)
		}
		mr := judge(m, res)
		rep.add(mr)
		if o.OnMutant != nil {
			o.OnMutant(mr)
		}
	}
	return rep, nil
}

// mutantsAtOnce bounds the focused mutants run at once: on two cores, 8
// at a time took 8.7-9.8 s, all 22 at once 10.5-10.7 s, 4 at a time
// 10.4-13.1 s; a bound keeps a slower machine from timing scenarios out
// (a mutant only a timeout "caught" would count as not caught).
const mutantsAtOnce = 8

// scoreAtOnce runs the mutants' focused scenarios side by side
// (mutantsAtOnce at a time): each asks for
// configurations of its own, which the shared balancer takes in a few
// reloads rather than one or two per mutant (the self-test of 22 mutants
// took 20.6 s one after another, most of it waiting for reloads). Each
// outcome is heard in the mutants' order, as soon as it and those before
// it are known. (The whole suite per mutant stays one after another: its
// balancers are removed after each, so that its many slots do not slow the
// next one's reloads.)
func scoreAtOnce(o Options, suite suiteFunc, rep *Report) error {
	results := make([]MutantResult, len(o.Mutants))
	errs := make([]error, len(o.Mutants))
	done := make([]bool, len(o.Mutants))
	var mu sync.Mutex
	heard := 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, mutantsAtOnce)
	for i, m := range o.Mutants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			res, err := suite([]string{m.Name}, clauseTags(m))
			<-sem
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[i] = fmt.Errorf("mutant %s: %w", m.Name, err)
			} else {
				results[i] = judge(m, res)
			}
			done[i] = true
			for ; heard < len(done) && done[heard] && errs[heard] == nil; heard++ {
				if o.OnMutant != nil {
					o.OnMutant(results[heard])
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, mr := range results {
		rep.add(mr)
	}
	return nil
}

// clauseTags selects the scenarios of the clauses a mutant breaks.
func clauseTags(m runner.Mutation) string {
	var tags []string
	for _, c := range m.Clauses() {
		tags = append(tags, "@"+c)
	}
	return strings.Join(tags, ",")
}

// baselineFailures names the scenarios that failed on the reference, each
// with the first line of its error: a failing reference is a fault of the
// harness or the machine, and the next person needs the why.
func baselineFailures(res contract.RunResult) []string {
	var failed []string
	for _, r := range res.Results {
		if r.Status == contract.Failed {
			line := r.Feature + ": " + r.Name
			if first, _, _ := strings.Cut(strings.TrimSpace(r.Error), "\n"); first != "" {
				line += " (" + first + ")"
			}
			failed = append(failed, line)
		}
	}
	return failed
}

// judge says whether the suite caught the mutant, and with what.
func judge(m runner.Mutation, res contract.RunResult) MutantResult {
	mr := MutantResult{Name: m.Name, Doc: m.Doc, Wall: res.Wall.Round(time.Millisecond).String()}
	for _, r := range res.Results {
		// Only a failed check of the contract counts: not a failure that
		// only says a known deviation went away, nor one of the harness or
		// the environment (a timeout would otherwise "catch" any mutant).
		if r.Status == contract.Failed && r.Violation && !r.StaleDeviation {
			mr.CaughtBy = append(mr.CaughtBy, fmt.Sprintf("%s: %s %v", r.Feature, r.Name, r.Clauses))
		}
	}
	mr.Caught = len(mr.CaughtBy) > 0
	return mr
}

// Select returns the mutants of an implementation named, in
// runner.MutationsOf order, or all of them when names is empty. An unknown
// name is an error that lists the known ones.
func Select(impl lb.Implementation, names []string) ([]runner.Mutation, error) {
	all := runner.MutationsOf(impl)
	if len(names) == 0 {
		return all, nil
	}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(m runner.Mutation) bool { return m.Name == n }) {
			var known []string
			for _, m := range all {
				known = append(known, m.Name)
			}
			return nil, fmt.Errorf("unknown mutation %q of %s: use one of %s", n, impl.Name(), strings.Join(known, ", "))
		}
	}
	var picked []runner.Mutation
	for _, m := range all {
		for _, n := range names {
			if m.Name == n {
				picked = append(picked, m)
			}
		}
	}
	return picked, nil
}
