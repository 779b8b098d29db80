package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"mtlsconform/contract"
	"mtlsconform/harness"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/output"
	"mtlsconform/reports"
	"mtlsconform/runner"
)

const matrixUsage = `mtlsconform matrix: run the suite against every reference implementation and put them side by side.

  mtlsconform matrix --out out/matrix [--impl nginx,haproxy,apache,caddy,trafficserver] [--scheme dlb|all|NAME,...]
      [--tags EXPR] [--parallel 2] [--container-each]

Each implementation's own reports go to --out/IMPL/ (--out/IMPL/SCHEME/ with more than one scheme:
--scheme all is implementation × every built-in scheme); the side-by-side matrix (clause × mode per
implementation: passed, failed, known deviation with its reason, not supported) to --out/matrix.html,
matrix.md and matrix.json. Exit status 1 when any scenario failed, 3 when a run verified too little.`

const reportUsage = `mtlsconform report: build the side-by-side matrix from runs made elsewhere.

  mtlsconform report --merge out/nginx out/haproxy ... [--out out/matrix]

Each folder is one run's --out (its results.json is read); one CI job per implementation is how
the matrix spreads over machines.`

func cmdMatrix(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform matrix", stderr, matrixUsage)
	out := fs.String("out", "out/matrix", "`folder` for the matrix and each implementation's reports")
	var impls stringList
	fs.Var(&impls, "impl", "implementations to run (repeatable or comma-separated; default all): "+strings.Join(implNames(), ", "))
	tags := fs.String("tags", "", "godog tag `expression` selecting scenarios")
	conc := fs.Int("concurrency", runner.DefaultConcurrency, "scenarios run at once within each implementation")
	parallel := fs.Int("parallel", 2, "implementations run at once")
	warm := warmFlag(fs)
	backendContainer := fs.Bool("backend-container", false, backendContainerUsage)
	containerEach := fs.Bool("container-each", false, "start a container for each run's balancer, as a single run does, instead of one container for every implementation's (each a process of its own in it); --warm runs always start or keep their own")
	var schemeArgs stringList
	fs.Var(&schemeArgs, "scheme", "header `scheme`s (repeatable or comma-separated; all: every built-in; default dlb): "+strings.Join(contract.SchemeNames(), ", ")+", or a scheme file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *conc < 1 || *parallel < 1 {
		return usagef("--concurrency and --parallel must be 1 or more")
	}
	if err := checkWarm(*warm); err != nil {
		return err
	}
	if len(impls) == 0 {
		impls = implNames()
	}
	chosen, err := lookupImplementations("--impl", impls)
	if err != nil {
		return err
	}
	schemes, err := matrixSchemes(schemeArgs)
	if err != nil {
		return err
	}
	type job struct {
		impl   lb.Implementation
		scheme contract.Scheme
		name   string
		dir    string
	}
	var jobs []job
	for _, impl := range chosen {
		for _, s := range schemes {
			j := job{impl: impl, scheme: s, name: impl.Name(), dir: filepath.Join(*out, impl.Name())}
			if len(schemes) > 1 {
				j.name += " " + s.Name
				j.dir = filepath.Join(j.dir, s.Name)
			}
			jobs = append(jobs, j)
		}
	}
	width := 0
	for _, j := range jobs {
		width = max(width, len(j.name))
	}
	// One backend for every run, served by this program where its
	// balancers reach it (else a container: a start each saved, about a
	// second and 1-2 CPU-seconds of the engine here). A container starts
	// beside the first runs' balancers; a run that cannot reach it as its
	// balancers would, or finds it did not start, starts its own.
	backend := harness.BeginSharedBackend(ctx, harness.Options{Implementation: all.Default(), Warm: *warm,
		BackendContainer: *backendContainer, Logf: prefixLogger(stderr, "mtlsconform")})
	defer backend.Close(context.WithoutCancel(ctx))
	// One container for every implementation's balancer, each a process
	// of its own in it (harness.CoHost): a container start and removal
	// cost this machine's engine about as much CPU as a balancer's whole
	// run. --container-each starts one per run, as a single run does.
	var co *harness.CoHost
	if !*warm && !*containerEach {
		co = harness.BeginCoHost(ctx, all.Implementations(), prefixLogger(stderr, "mtlsconform"))
		defer co.Close()
	}
	docs := make([]contract.Document, len(jobs))
	errs := make([]error, len(jobs))
	logs := make([]bytes.Buffer, len(jobs))
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			opts := runner.RunOptions{Implementation: j.impl, Scheme: j.scheme, Tags: *tags, Concurrency: *conc,
				Backend: backend, CoHost: co, BackendContainer: *backendContainer, Warm: *warm, Logf: prefixLogger(stderr, "mtlsconform "+j.name)}
			res, err := runWithReports(ctx, opts, j.dir, "none", &logs[i])
			docs[i], errs[i] = contract.NewDocument(res), err
			if err == nil {
				io.WriteString(stdout, matrixLines(j.name, width, res.Results)) // one write: jobs end at once
			}
		}()
	}
	wg.Wait()
	if *warm && ctx.Err() == nil {
		fmt.Fprintln(stderr, warmLeft)
	}
	if _, err := backend.Wait(); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "mtlsconform: the shared backend did not start, so each run started its own: %v\n", err)
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", jobs[i].name, err)
		}
	}
	return writeMatrix(*out, docs, stdout)
}

// matrixLines is one job's count line and, under it, each failed
// scenario with the first line of its error: what to open first, without
// looking through every implementation's reports.
func matrixLines(name string, width int, results []contract.ScenarioResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s %s\n", width, name, contract.CountLine(results))
	for _, r := range results {
		if r.Status == contract.Failed {
			first, _, _ := strings.Cut(r.Error, "\n")
			fmt.Fprintf(&b, "  FAILED %s: %s\n    %s\n", r.Feature, r.Name, first)
		}
	}
	return b.String()
}

// matrixSchemes reads --scheme: names, files, or all (every built-in).
func matrixSchemes(args []string) ([]contract.Scheme, error) {
	if len(args) == 0 {
		args = []string{contract.DefaultScheme}
	}
	if len(args) == 1 && args[0] == "all" {
		args = contract.SchemeNames()
	}
	var out []contract.Scheme
	seen := map[string]bool{}
	for _, a := range args {
		s, err := contract.ResolveScheme(a)
		if err != nil {
			return nil, usagef("--scheme: %v", err)
		}
		if seen[s.Name] {
			return nil, usagef("--scheme: %s given twice", s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, nil
}

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform report", stderr, reportUsage)
	merge := fs.Bool("merge", false, "merge the runs whose folders follow into one matrix")
	out := fs.String("out", "out/matrix", "`folder` for matrix.html, matrix.md and matrix.json")
	if err := parseFlagsThenArgs(fs, args); err != nil {
		return err
	}
	if !*merge || fs.NArg() == 0 {
		return usagef("give --merge and one or more run folders, e.g. mtlsconform report --merge out/nginx out/haproxy")
	}
	var docs []contract.Document
	for _, dir := range fs.Args() {
		d, err := reports.ReadDocument(filepath.Join(dir, "results.json"))
		if err != nil {
			return &envError{err}
		}
		docs = append(docs, d)
	}
	return writeMatrix(*out, docs, stdout)
}

// writeMatrix writes the side-by-side files and decides the exit status:
// any failure is 1, any inconclusive run 3.
func writeMatrix(out string, docs []contract.Document, stdout io.Writer) error {
	m := reports.BuildCrossMatrix(docs)
	files, err := reports.CrossFiles(m)
	if err != nil {
		return &envError{err}
	}
	if err := output.WriteFiles(out, files); err != nil {
		return &envError{err}
	}
	fmt.Fprintf(stdout, "matrix: %s, %s, %s\n", filepath.Join(out, "matrix.html"), filepath.Join(out, "matrix.md"), filepath.Join(out, "matrix.json"))
	if m.Failed() > 0 {
		return errChecksFailed
	}
	for _, c := range m.Columns {
		if !c.Conclusive {
			return fmt.Errorf("%w: %s: %s", errInconclusive, c.Name, c.Problem)
		}
	}
	return nil
}

// lookupImplementations finds the implementations a repeatable flag
// names; an unknown one is a usage error naming the flag.
func lookupImplementations(flag string, names []string) ([]lb.Implementation, error) {
	var out []lb.Implementation
	for _, name := range names {
		impl, err := all.Lookup(name)
		if err != nil {
			return nil, usagef("%s: %v", flag, err)
		}
		out = append(out, impl)
	}
	return out, nil
}

func implNames() []string {
	var out []string
	for _, i := range all.Implementations() {
		out = append(out, i.Name())
	}
	return out
}

// cmdImages builds every reference implementation's image that is missing
// (offline, from Debian packages), so that the first run does not pay for it.
func cmdImages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform images", stderr, "mtlsconform images: build the reference implementations' images that are missing, and the matrix's image with all of them (about 10-20 s each, once).")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, impl := range all.Implementations() {
		built, err := harness.EnsureImage(ctx, impl, prefixLogger(stderr, "mtlsconform"))
		if err != nil {
			return &envError{err}
		}
		imageLine(stdout, impl.Name(), impl.Image(), built)
	}
	// The matrix's one container for every implementation's balancer.
	ref, built, err := harness.EnsureCoHostImage(ctx, all.Implementations(), prefixLogger(stderr, "mtlsconform"))
	if err != nil {
		return &envError{err}
	}
	imageLine(stdout, "matrix", ref, built)
	return nil
}

// imageLine says what became of an image: built, or present already.
func imageLine(w io.Writer, name, ref string, built bool) {
	state := "present"
	if built {
		state = "built"
	}
	fmt.Fprintf(w, "%-*s %s (%s)\n", nameWidth(all.Implementations()), name, ref, state)
}

// nameWidth is the longest implementation name, for lines that line up.
func nameWidth(impls []lb.Implementation) int {
	w := 0
	for _, i := range impls {
		w = max(w, len(i.Name()))
	}
	return w
}
