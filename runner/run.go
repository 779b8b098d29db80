// Package runner runs the conformance suite: it opens a target (the
// reference implementation in containers, or a live balancer), runs the
// feature files through godog with the step definitions of package steps,
// closes the target whatever happened, and returns the verdicts as a
// contract.RunResult. Teams embed it in their own go test:
//
//	func TestOurBalancer(t *testing.T) {
//		_, err := runner.Run(ctx, runner.RunOptions{TestingT: t, Features: os.DirFS("features")})
//		...
//	}
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cucumber/godog"

	"mtlsconform/contract"
	"mtlsconform/features"
	"mtlsconform/harness"
	"mtlsconform/lb"
	"mtlsconform/steps"
)

// RunOptions configure one run of the suite.
type RunOptions struct {
	// Tags filters scenarios with a godog tag expression, e.g. "@C1,@C2"
	// or "@mandatory && ~@pitfall".
	Tags string
	// Format is godog's formatter list, e.g. "pretty" or
	// "progress,cucumber:out/cucumber.json,junit:out/junit.xml".
	Format      string
	Concurrency int
	Output      io.Writer
	// TestingT reports each scenario as a subtest of t once the run is
	// over: PASS, FAIL with the violation, or SKIP with the reason of a
	// known deviation or a not-applicable scenario.
	TestingT *testing.T
	// Features is where the feature files come from; the embedded copy when nil.
	Features fs.FS
	Paths    []string
	Profile  contract.Profile
	// Scheme is the header set checked at the backend (and rendered by
	// the reference); the dlb scheme when empty.
	Scheme contract.Scheme
	// Target is what the scenarios call; the reference nginx (started for
	// this run and removed after it) when nil.
	Target Target
	// Implementation is the reference balancer (nginx when nil) and Image
	// replaces its own image.
	Implementation lb.Implementation
	Image          string
	// ContainerPerConfig and PublishPorts choose the reference's other
	// ways (harness.Options): a container per configuration instead of
	// slots of one balancer; a network of its own with ports published on
	// 127.0.0.1 instead of the engine's default bridge.
	ContainerPerConfig, PublishPorts bool
	// BackendContainer runs the backend in a container even where the
	// harness could serve it itself (harness.Options.BackendContainer).
	BackendContainer bool
	// Backend is a backend the reference shares with other runs of this
	// process (harness.Options.Backend).
	Backend *harness.SharedBackend
	// CoHost is a container the reference's balancer starts in as a
	// process, shared with other runs of this process
	// (harness.Options.CoHost).
	CoHost *harness.CoHost
	// Warm keeps the reference's backend and balancers for the next run
	// and uses those an earlier run kept (harness.Options.Warm).
	Warm      bool
	Mutations []string
	Logf      func(format string, args ...any)
	// OnScenario is called as each scenario ends (progress output).
	OnScenario func(contract.ScenarioResult)
	// WhileClosing, when set, is given the run's result once the
	// scenarios are done, while the target is being closed (removing a
	// reference's containers takes about half a second): reports can be
	// written meanwhile. Run returns when both are done, with the error
	// WhileClosing returned joined to the cleanup's. It is called for a run
	// whose context was cancelled too (its scenarios then failed for that
	// reason): check ctx. It is not called when the target never opened.
	WhileClosing func(contract.RunResult) error
}

// DefaultConcurrency is how many scenarios a run against the reference
// executes at once unless told otherwise: every scenario of the suite.
// The scenarios mostly wait for the balancer's reloads, and the
// configurations asked for while a reload runs share the next one: the
// more scenarios wait at once, the fewer reloads. The full nginx suite
// (97 scenarios) took 4 reloads at 32 and 2 at 128; its wall time did not
// move (1.12 s and 1.15 s, medians of 6), the matrix's did: 4.15 s -> 3.86
// s, the machine's CPU 6.75 -> 6.2 s (medians of 6, 2026-12-02). Earlier,
// on a slower machine, the full suite took 3.4 s at 8, 3.2 s at 16 and 2.8
// s at 32. Every implementation passed six runs at 128 with no flake.
const DefaultConcurrency = 128

// LiveConcurrency is DefaultConcurrency against a live balancer, which
// is somebody's: fewer connections at once than the reference takes.
const LiveConcurrency = 32

// Run runs the suite: opens the target (the reference, started for this
// run, when none is given), runs every selected scenario, and closes the
// target, also when a scenario fails. An error means the run itself broke
// (no Docker, an image that cannot be built), not that a scenario failed.
func Run(ctx context.Context, o RunOptions) (res contract.RunResult, err error) {
	start := time.Now()
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Features == nil {
		o.Features = features.FS
	}
	if len(o.Paths) == 0 {
		o.Paths = []string{"."}
	}
	if o.Format == "" {
		o.Format = "progress"
	}
	if o.Output == nil {
		o.Output = os.Stdout
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	tmp, removeTmp, err := harness.TempDir()
	if err != nil {
		return res, err
	}
	defer removeTmp()

	target := o.Target
	if target == nil {
		target = &Reference{Options: harness.Options{Implementation: o.Implementation, Image: o.Image, Logf: o.Logf,
			ContainerPerConfig: o.ContainerPerConfig, PublishPorts: o.PublishPorts, BackendContainer: o.BackendContainer,
			Backend: o.Backend, CoHost: o.CoHost, Warm: o.Warm}, Mutations: o.Mutations}
	} else if len(o.Mutations) > 0 {
		return res, errors.New("mutations apply to the reference load balancer only, not to a given target")
	}
	if o.Profile.Name == "" {
		o.Profile = target.DefaultProfile()
	}
	cat := steps.NewCatalogue()
	// Close also after a failed Open: a half-started environment is
	// removed as well.
	closing := false // WhileClosing took the close over
	defer func() {
		if closing {
			return
		}
		if cerr := target.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	if err := target.Open(ctx, cat); err != nil {
		return res, err
	}

	suite := &steps.Suite{
		Target:    target,
		Profile:   o.Profile,
		Catalogue: cat,
		Recorder:  steps.NewRecorder(o.OnScenario),
		TempDir:   tmp,
		Scheme:    o.Scheme,
	}
	status := godog.TestSuite{
		Name:                "mtlsconform",
		ScenarioInitializer: suite.InitializeScenario,
		Options: &godog.Options{
			Format:      o.Format,
			Tags:        o.Tags,
			Concurrency: o.Concurrency,
			Output:      &plainWriter{w: o.Output},
			FS:          o.Features,
			Paths:       o.Paths,
			Strict:      true,
			// Off, so that godog writes report files in one piece; the
			// console stays plain by plainWriter.
			NoColors:       false,
			DefaultContext: ctx,
		},
	}.Run()
	res = contract.RunResult{
		Results:        suite.Recorder.Results(),
		GodogStatus:    status,
		Wall:           time.Since(start),
		Target:         target.Describe(),
		Implementation: target.Implementation(),
		Profile:        o.Profile,
		Scheme:         suite.HeaderScheme().Name,
		SchemeNote:     suite.HeaderScheme().CoverageNote(),
	}
	modes := target.Capabilities().Modes
	for _, m := range modes {
		if len(modes) == 1 || slices.ContainsFunc(res.Results, func(r contract.ScenarioResult) bool { return slices.Contains(r.Modes, m) }) {
			res.Modes = append(res.Modes, m)
		}
	}
	res.Stats = target.Stats()
	if o.TestingT != nil {
		ReportToTest(o.TestingT, res)
	}
	if o.WhileClosing != nil {
		closing = true
		closed := make(chan error, 1)
		go func() { closed <- target.Close(context.WithoutCancel(ctx)) }()
		err := o.WhileClosing(res)
		if cerr := <-closed; cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		return res, err
	}
	return res, nil
}

// ReportToTest turns each scenario's verdict into a subtest of t, so that
// go test and its -json consumers count what the run counted: a known
// deviation or a not-applicable scenario is a SKIP with its reason, never
// a PASS.
func ReportToTest(t *testing.T, res contract.RunResult) {
	for _, r := range res.Results {
		t.Run(r.Name, func(t *testing.T) {
			for _, c := range r.Checks {
				t.Log("verified: " + c)
			}
			switch r.Status {
			case contract.Failed:
				t.Error(r.Error)
			case contract.KnownDeviation, contract.NotApplicable, contract.NotSupported:
				msg, detail := r.SkipMessage(res.Profile.Name)
				if detail != "" {
					t.Log(detail)
				}
				t.Skip(msg)
			}
		})
	}
}
