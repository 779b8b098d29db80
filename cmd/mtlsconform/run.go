package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/output"
	"mtlsconform/reports"
	"mtlsconform/runner"
	"mtlsconform/selftest"
	"mtlsconform/steps"
)

const runUsage = `mtlsconform run: run the conformance suite and write reports.

Against a reference load balancer (in containers, started and removed by the run):
  mtlsconform run --out out/                     nginx
  mtlsconform run --impl haproxy --out out/      or haproxy, apache, caddy, trafficserver (mtlsconform matrix: all)
  mtlsconform run --scheme envoy-xfcc            the header scheme the backend reads (default dlb; or a scheme file)

Against a live load balancer the harness did not start:
  mtlsconform run --target https://lb.example.com:443 --mode mandatory \
      --client-p12 partner.p12 --client-p12-password-env P12_PASSWORD \
      --server-ca lb-ca.pem [--echo-path /echo] [--ca-cert ca.pem --ca-key ca.key] \
      [--http-target http://lb.example.com:80] [--public-host www.example.com]
      [--ocsp http://mtlsconform:TOKEN@HOST:8889/ocsp]   (the responder mtlsconform ocsp-responder serves)

Reports in --out: cucumber.json, junit.xml, report.html, summary.md, results.json.
Exit status: 0 passed (known deviations allowed), 1 a check failed, 2 usage or environment error,
3 inconclusive (the core clauses of the checked mode were not verified; the coverage says why).`

// liveFlags are the flags that describe a live target; run and onboard
// share them.
type liveFlags struct {
	target, mode                 string
	p12, p12Password, p12PassEnv string
	cert, key                    string
	serverCA, serverName         string
	insecure                     bool
	apiPath, echoPath, reqPath   string
	caCert, caKey, certHeader    string
	scheme                       string
	expectProducts               string
	httpTarget, publicHost       string
	ocsp                         string
	timeout                      time.Duration
}

func (l *liveFlags) register(fs *flag.FlagSet, withCredential bool) {
	fs.StringVar(&l.target, "target", "", "`URL` of a live load balancer (https://HOST:PORT) to check instead of the reference")
	fs.StringVar(&l.mode, "mode", "", "the live target's mode: mandatory or optional (required with --target)")
	if withCredential {
		fs.StringVar(&l.p12, "client-p12", "", "a client credential the target trusts, as PKCS#12 `file`")
		fs.StringVar(&l.p12Password, "client-p12-password", "", "its password (visible in the process list: prefer --client-p12-password-env)")
		fs.StringVar(&l.p12PassEnv, "client-p12-password-env", "", "name of the environment `variable` holding the PKCS#12 password")
		fs.StringVar(&l.cert, "client-cert", "", "a client credential the target trusts: PEM certificate (with its intermediates) `file`")
		fs.StringVar(&l.key, "client-key", "", "its PEM private key `file`")
	}
	fs.StringVar(&l.serverCA, "server-ca", "", "PEM `file` with the CA that issued the target's own certificate")
	fs.StringVar(&l.serverName, "server-name", "", "name to verify the target's certificate against (default: the URL's host)")
	fs.BoolVar(&l.insecure, "insecure-skip-verify", false, "do not verify the target's own certificate (reported loudly; prefer --server-ca)")
	fs.StringVar(&l.apiPath, "api-path", productapi.ProductsPath, "the product API `path` on the target")
	fs.StringVar(&l.echoPath, "echo-path", "", "`path` of a backend behind the target that follows the echo contract (enables the header clauses)")
	fs.StringVar(&l.reqPath, "requests-path", productapi.RequestsPath, "`path` of that backend's request log")
	fs.StringVar(&l.caCert, "ca-cert", "", "PEM `file`: a CA the target trusts (enables the expired / second-leaf clauses)")
	fs.StringVar(&l.caKey, "ca-key", "", "PEM `file`: that CA's private key")
	fs.StringVar(&l.scheme, "scheme", contract.DefaultScheme, "header `scheme` the backend reads: "+strings.Join(contract.SchemeNames(), ", ")+
		", or a JSON/YAML scheme file (the reference renders it; a --target is checked in it)")
	fs.StringVar(&l.certHeader, "cert-header", "", "`header` the target forwards the client certificate in (default: the scheme's, X-WSO2-CLIENT-CERTIFICATE in dlb)")
	fs.StringVar(&l.httpTarget, "http-target", "", "`URL` of the target's plain-HTTP listener (http://HOST:PORT), where it has one (enables C19)")
	fs.StringVar(&l.publicHost, "public-host", "", "a `host` name the target serves on the same address without client certificates (enables C20's public-host scenarios)")
	fs.StringVar(&l.ocsp, "ocsp", "", "`URL` of the harness's OCSP responder the target asks, as `mtlsconform ocsp-responder` printed it (enables C24; needs --ca-cert, --ca-key)")
	fs.StringVar(&l.expectProducts, "expect-products", "", "JSON `file`: the exact product list the target's API answers (without it only the list's shape is checked)")
	fs.DurationVar(&l.timeout, "timeout", 15*time.Second, "bound on each request to the target (dial to last byte)")
}

// headerScheme is the scheme --scheme names, with --cert-header applied
// when the target is live.
func (l *liveFlags) headerScheme() (contract.Scheme, error) {
	s, err := contract.ResolveScheme(l.scheme)
	if err != nil {
		return s, usagef("--scheme: %v", err)
	}
	if l.target == "" || l.certHeader == "" {
		return s, nil
	}
	if s, err = s.WithCertHeader(l.certHeader); err != nil {
		return s, usagef("--cert-header: %v", err)
	}
	return s, nil
}

// credential reads the client credential from PKCS#12 or PEM files.
func (l *liveFlags) credential() (*pki.Identity, error) {
	switch {
	case l.p12 != "" && (l.cert != "" || l.key != ""):
		return nil, usagef("give the client credential as --client-p12 or as --client-cert and --client-key, not both")
	case l.p12 != "":
		pw := l.p12Password
		if l.p12PassEnv != "" {
			v, ok := os.LookupEnv(l.p12PassEnv)
			if !ok {
				return nil, usagef("--client-p12-password-env names %s, which is not set", l.p12PassEnv)
			}
			pw = v
		}
		id, err := pki.LoadPKCS12(l.p12, pw)
		if err != nil {
			return nil, fmt.Errorf("--client-p12: %w", err)
		}
		return id, nil
	case l.cert != "" && l.key != "":
		id, err := pki.LoadKeyPair(l.cert, l.key)
		if err != nil {
			return nil, fmt.Errorf("--client-cert, --client-key: %w", err)
		}
		return id, nil
	case l.cert != "" || l.key != "":
		return nil, usagef("--client-cert and --client-key go together")
	}
	return nil, nil
}

// live builds the live target from the flags; nil when --target is unset.
func (l *liveFlags) live(stderr io.Writer) (*runner.Live, error) {
	if l.target == "" {
		for name, v := range map[string]string{"--mode": l.mode, "--client-p12": l.p12, "--client-cert": l.cert, "--server-ca": l.serverCA, "--echo-path": l.echoPath, "--ca-cert": l.caCert, "--expect-products": l.expectProducts, "--http-target": l.httpTarget, "--public-host": l.publicHost, "--ocsp": l.ocsp} {
			if v != "" {
				return nil, usagef("%s only applies with --target", name)
			}
		}
		return nil, nil
	}
	if l.mode == "" {
		return nil, usagef("--target needs --mode mandatory or --mode optional: the mode the target is configured in")
	}
	o, err := l.options(stderr)
	if err != nil {
		return nil, err
	}
	if o.Credential, err = l.credential(); err != nil {
		return nil, err
	}
	if o.Credential == nil {
		return nil, usagef("--target needs a client credential the target trusts: --client-p12 (+ password) or --client-cert and --client-key")
	}
	return runner.NewLive(o)
}

// options reads everything about the live target but the client
// credential: mode, the CA of its own certificate, paths, the CA it trusts.
func (l *liveFlags) options(stderr io.Writer) (runner.LiveOptions, error) {
	mode, err := contract.ParseMode(l.mode)
	if err != nil {
		return runner.LiveOptions{}, usagef("--mode: %v", err)
	}
	scheme, err := l.headerScheme()
	if err != nil {
		return runner.LiveOptions{}, err
	}
	o := runner.LiveOptions{
		URL: l.target, Mode: mode, ServerName: l.serverName,
		InsecureSkipVerify: l.insecure, APIPath: l.apiPath, EchoPath: l.echoPath,
		RequestsPath: l.reqPath, CertHeader: scheme.Cert.Header, Timeout: l.timeout,
		PlainURL: l.httpTarget, PublicHost: l.publicHost, OCSP: l.ocsp,
	}
	if l.serverCA != "" {
		certs, err := pki.LoadCertificates(l.serverCA)
		if err != nil {
			return o, fmt.Errorf("--server-ca: %w", err)
		}
		o.ServerRoots = x509.NewCertPool()
		for _, c := range certs {
			o.ServerRoots.AddCert(c)
		}
	} else if !l.insecure {
		return o, usagef("--target needs --server-ca (the CA that issued the target's own certificate) or, knowingly, --insecure-skip-verify")
	}
	if l.insecure {
		fmt.Fprintln(stderr, "WARNING: --insecure-skip-verify: the target's own certificate is NOT verified; anyone on the path could answer in its place")
	}
	if l.expectProducts != "" {
		if o.ExpectProducts, err = readProductList(l.expectProducts); err != nil {
			return o, err
		}
		o.ExpectProductsFrom = l.expectProducts
	}
	switch {
	case l.caCert != "" && l.caKey != "":
		ca, err := pki.LoadKeyPair(l.caCert, l.caKey)
		if err != nil {
			return o, fmt.Errorf("--ca-cert, --ca-key: %w", err)
		}
		if !ca.Cert.IsCA {
			return o, usagef("--ca-cert %s is not a CA certificate", l.caCert)
		}
		o.CA = &pki.CA{Identity: *ca}
	case l.caCert != "" || l.caKey != "":
		return o, usagef("--ca-cert and --ca-key go together")
	}
	return o, nil
}

// readProductList reads --expect-products: a JSON array of product objects.
func readProductList(path string) ([]map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--expect-products: %v", err)
	}
	list, err := productapi.CheckProductList(data)
	if err != nil {
		return nil, usagef("--expect-products %s is not a product list (%v): give a JSON array of objects with "+
			"product-code, product-desc, product-name, product-status strings and a numeric product-price", path, err)
	}
	return list, nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform run", stderr, runUsage)
	out := fs.String("out", "out", "`folder` for the reports")
	tags := fs.String("tags", "", "godog tag `expression` selecting scenarios, e.g. '@C1,@C2' or '@mandatory && ~@pitfall'")
	format := fs.String("format", "none", "console `formatter` of godog: none, progress or pretty (reports are written whatever this says)")
	conc := fs.Int("concurrency", 0, "scenarios run at once (default "+strconv.Itoa(runner.DefaultConcurrency)+
		" against the reference, "+strconv.Itoa(runner.LiveConcurrency)+" against a --target)")
	var ref referenceFlags
	ref.register(fs)
	profileName := fs.String("profile", "", "`profile` to judge by: "+strings.Join(profileNames(), ", ")+
		" (default: the implementation's own; http-400 for --target)")
	featuresDir := fs.String("features", "", "`folder` of feature files to run instead of the built-in ones")
	var mutations stringList
	fs.Var(&mutations, "mutation", "break the reference on purpose (repeatable; see mtlsconform selftest -h for each implementation's)")
	warm := warmFlag(fs)
	var lf liveFlags
	lf.register(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	concSet := false
	fs.Visit(func(f *flag.Flag) { concSet = concSet || f.Name == "concurrency" })
	switch {
	case concSet && *conc < 1:
		return usagef("--concurrency must be 1 or more")
	case !concSet && lf.target != "":
		*conc = runner.LiveConcurrency
	case !concSet:
		*conc = runner.DefaultConcurrency
	}
	switch *format {
	case "none", "progress", "pretty":
	default:
		return usagef("--format %q: use none, progress or pretty", *format)
	}
	if *warm && lf.target != "" {
		return usagef("--warm keeps the reference's containers for the next run; a --target has none")
	}
	if err := checkWarm(*warm); err != nil {
		return err
	}
	impl, err := ref.implementation()
	if err != nil {
		return err
	}
	if _, err := selftest.Select(impl, mutations); err != nil {
		return usagef("--mutation: %v", err)
	}
	live, err := lf.live(stderr)
	if err != nil {
		return err
	}
	if live != nil && (ref.impl != all.Default().Name() || ref.image != "" || len(mutations) > 0 || ref.containerPerConfig || ref.publishPorts || ref.backendContainer) {
		return usagef("--impl, --image, --mutation, --container-per-config, --publish-ports and --backend-container choose how the reference runs; a --target is what it is (judge it by --profile)")
	}
	scheme, err := lf.headerScheme()
	if err != nil {
		return err
	}
	var profile contract.Profile
	if *profileName != "" {
		if profile, err = lookupProfile(*profileName); err != nil {
			return usagef("--profile: %v", err)
		}
	}
	opts := runner.RunOptions{
		Tags: *tags, Concurrency: *conc, Profile: profile, Scheme: scheme,
		Implementation: impl, Image: ref.image, Mutations: mutations,
		ContainerPerConfig: ref.containerPerConfig, PublishPorts: ref.publishPorts, BackendContainer: ref.backendContainer, Warm: *warm,
		Logf: prefixLogger(stderr, "mtlsconform"),
	}
	if live != nil {
		opts.Target = live
	}
	if *featuresDir != "" {
		if st, err := os.Stat(*featuresDir); err != nil || !st.IsDir() {
			return usagef("--features %s: not a folder", *featuresDir)
		}
		opts.Features = os.DirFS(*featuresDir)
	}
	res, err := runWithReports(ctx, opts, *out, *format, stdout)
	if *warm && ctx.Err() == nil {
		fmt.Fprintln(stderr, warmLeft)
	}
	if err != nil {
		return err
	}
	if contract.Counts(res.Results)[contract.Failed] > 0 || res.GodogStatus != 0 {
		return errChecksFailed
	}
	if cov := contract.ComputeCoverage(res.Results, res.Modes); !cov.Conclusive() {
		return fmt.Errorf("%w: %s", errInconclusive, cov.Problem())
	}
	return nil
}

func envDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// runWithReports runs the suite with progress lines on stdout and writes
// every report into out. godog's cucumber file is written into the run's
// private temporary folder first (godog fills it only at the end) and
// copied into out atomically, so out never holds half a report; the JUnit
// file is written from the results, like the others.
func runWithReports(ctx context.Context, opts runner.RunOptions, out, consoleFormat string, stdout io.Writer) (contract.RunResult, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return contract.RunResult{}, &envError{fmt.Errorf("make report folder %s: %w", out, err)}
	}
	stage, removeStage, err := harness.TempDir()
	if err != nil {
		return contract.RunResult{}, &envError{err}
	}
	defer removeStage()
	cucumber := filepath.Join(stage, "cucumber.json")
	formats := []string{"cucumber:" + cucumber}
	opts.Output = io.Discard
	if consoleFormat != "none" {
		formats = append([]string{consoleFormat}, formats...)
		opts.Output = stdout
	}
	opts.Format = strings.Join(formats, ",")
	var mu sync.Mutex
	n := 0
	opts.OnScenario = func(r contract.ScenarioResult) {
		if ctx.Err() != nil {
			return // interrupted: what fails now fails for that reason alone
		}
		mu.Lock()
		defer mu.Unlock()
		n++
		line := fmt.Sprintf("[%2d] %-16s %s: %s", n, r.Status, r.Feature, r.Name)
		if r.Status == contract.Failed {
			first, _, _ := strings.Cut(r.Error, "\n")
			line += "\n       " + first
		}
		fmt.Fprintln(stdout, line)
	}
	// The reports are written while the containers are removed.
	var files reports.Files
	wrote := false
	opts.WhileClosing = func(res contract.RunResult) error {
		if ctx.Err() != nil {
			// Scenarios cut short by the interrupt failed for that reason
			// alone: no report is better than a report that says so.
			return nil
		}
		data, err := os.ReadFile(cucumber)
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Base(cucumber), err)
		}
		if err := output.WriteFile(filepath.Join(out, filepath.Base(cucumber)), data); err != nil {
			return err
		}
		if files, err = reports.Write(out, res); err != nil {
			return err
		}
		wrote = true
		return nil
	}
	res, runErr := runner.Run(ctx, opts)
	if !wrote {
		if runErr != nil {
			return res, &envError{runErr}
		}
		return res, &envError{errors.New("interrupted before the run ended: no reports were written")}
	}
	// The scenarios ran to their end and the reports are written; a
	// cleanup that failed afterwards (runErr) is said after the summary,
	// and still makes the exit status an environment error.
	for _, r := range res.Results {
		if r.Status == contract.Failed {
			fmt.Fprintf(stdout, "\nFAILED %s: %s\n%s\n", r.Feature, r.Name, indent(r.Error))
		}
	}
	fmt.Fprintln(stdout)
	for _, line := range contract.ComputeCoverage(res.Results, res.Modes).Lines() {
		fmt.Fprintln(stdout, line)
	}
	if res.SchemeNote != "" {
		fmt.Fprintf(stdout, "header scheme: %s\n", res.SchemeNote)
	}
	printHints(stdout, res.Results)
	fmt.Fprintf(stdout, "\nreports: %s, %s, %s, %s, %s\n", files.HTML, files.Markdown, files.JSON,
		filepath.Join(out, "cucumber.json"), files.JUnit)
	extra := ""
	if res.Stats.ContainersStarted > 0 || res.Stats.ContainersKept > 0 {
		extra = fmt.Sprintf(", %d container", res.Stats.ContainersStarted)
		if res.Stats.ContainersStarted != 1 {
			extra += "s"
		}
	}
	if res.Stats.ContainersKept > 0 {
		extra += fmt.Sprintf(" started and %d kept by an earlier run", res.Stats.ContainersKept)
	}
	if res.Stats.Backend != "" {
		extra += ", backend " + res.Stats.Backend
	}
	fmt.Fprintf(stdout, "%s (%s, header scheme %s%s, %v)\n", contract.CountLine(res.Results), res.Target, res.Scheme, extra, res.Wall.Round(time.Millisecond))
	if runErr != nil {
		return res, &envError{fmt.Errorf("%w (the run itself finished: its reports are written)", runErr)}
	}
	if len(res.Results) == 0 {
		return res, &envError{errors.New("no scenario ran: check --tags")}
	}
	return res, nil
}

// hints say which flags give a live target the capability that scenarios
// lacked.
var hints = map[steps.Need]string{
	steps.NeedBackendView: "--echo-path PATH (a backend behind the target that follows the echo contract, e.g. the productapi image as a canary)",
	steps.NeedNewLeaves:   "--ca-cert FILE --ca-key FILE (a CA the target trusts, to issue further leaves under it)",
	steps.NeedReconfigure: "run against the reference (no --target): a live target's configuration is what it is",
	steps.NeedPlainHTTP:   "--http-target http://HOST:PORT (the target's listener without TLS, where it has one)",
	steps.NeedPublicHost:  "--public-host NAME (a host the target serves on the same address without client certificates)",
	steps.NeedOCSP:        "--ocsp URL (point the target's OCSP check at `mtlsconform ocsp-responder`, and give --ca-cert and --ca-key)",
}

func printHints(w io.Writer, results []contract.ScenarioResult) {
	count := map[steps.Need]int{}
	for _, r := range results {
		if r.Status == contract.NotApplicable && r.Unmet != "" {
			count[steps.Need(r.Unmet)]++
		}
	}
	for _, n := range steps.Needs {
		if count[n] > 0 {
			fmt.Fprintf(w, "%d scenario(s) not applicable for want of %s: %s\n", count[n], n, hints[n])
		}
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func cmdSweep(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("mtlsconform sweep", os.Stderr, "mtlsconform sweep: remove containers, networks and temporary folders left by runs that were killed.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep, err := harness.Sweep(ctx, "")
	if err != nil {
		return &envError{err}
	}
	dirs := harness.SweepTempDirs()
	fmt.Fprintf(stdout, "removed %d container(s), %d network(s), %d temporary folder(s)\n", len(rep.Containers), len(rep.Networks), len(dirs))
	return nil
}

// warmFlag registers --warm (run, matrix).
func warmFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("warm", false, "keep the backend and the balancers running for the next run, and use those an earlier run kept: "+
		"repeated local runs skip their containers' start (a later run removes them once idle for "+harness.WarmIdle.String()+", mtlsconform sweep at once; never in CI)")
}

// warmLeft is what a --warm run says at its end: it may leave containers
// running.
var warmLeft = "mtlsconform: --warm: the balancers this run could keep stay running for the next run; " +
	"mtlsconform sweep removes them now, a later run once idle for " + harness.WarmIdle.String()

// checkWarm refuses --warm in CI (CI set): a CI job must leave nothing
// running, and its runs prove what a fresh start does.
func checkWarm(warm bool) error {
	if warm && inCI() {
		return usagef("--warm keeps containers running after the run, which a CI job must not (CI=%s): run without --warm", os.Getenv("CI"))
	}
	return nil
}

// inCI says whether this runs as a CI job (CI set to a true value).
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// referenceFlags pick the reference implementation and, optionally, an
// image to run it from instead of the one built offline.
type referenceFlags struct {
	impl, image                                        string
	containerPerConfig, publishPorts, backendContainer bool
}

func (r *referenceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.impl, "impl", all.Default().Name(), "reference `implementation`: "+strings.Join(implNames(), ", "))
	fs.StringVar(&r.image, "image", envDefault("MTLSCONFORM_IMAGE", os.Getenv("MTLSCONFORM_NGINX_IMAGE")),
		"run the implementation from this `image` (an upstream one where a registry is reachable) instead of the one built offline from Debian packages")
	fs.BoolVar(&r.containerPerConfig, "container-per-config", false,
		"start a balancer container for every configuration instead of serving them all from one balancer by reloads (slower; to compare)")
	fs.BoolVar(&r.publishPorts, "publish-ports", false,
		"give the run a network of its own and publish ports on 127.0.0.1, even where the engine's default bridge is reachable")
	fs.BoolVar(&r.backendContainer, "backend-container", false, backendContainerUsage)
}

// backendContainerUsage is --backend-container's help, for run, selftest
// and matrix.
const backendContainerUsage = "run the backend in a container even where mtlsconform can serve it itself on the engine's default bridge"

func (r *referenceFlags) implementation() (lb.Implementation, error) {
	impl, err := all.Lookup(r.impl)
	if err != nil {
		return nil, usagef("--impl: %v", err)
	}
	return impl, nil
}

// lookupProfile finds a profile by name: a generic one, or an
// implementation's measured one (reference-haproxy …), which a live
// balancer of that kind can be judged by.
func lookupProfile(name string) (contract.Profile, error) {
	for _, impl := range all.Implementations() {
		if p := impl.Profile(); p.Name == name {
			return p, nil
		}
	}
	p, err := contract.LookupProfile(name)
	if err != nil {
		return p, fmt.Errorf("unknown profile %q: use one of %s", name, strings.Join(profileNames(), ", "))
	}
	return p, nil
}

func profileNames() []string {
	var names []string
	for _, p := range contract.Profiles() {
		names = append(names, p.Name)
	}
	for _, impl := range all.Implementations() {
		if p := impl.Profile(); !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return names
}
