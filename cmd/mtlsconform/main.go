// Command mtlsconform checks mutual-TLS load balancers against the
// conformance contract.
//
//	mtlsconform run       the suite against the reference load balancer
//	                      (or a live one with --target), writing reports
//	mtlsconform onboard   will this partner's certificate be accepted, and
//	                      does adding it break anyone else?
//	mtlsconform selftest  the suite against deliberately broken references
//	mtlsconform matrix    every reference implementation side by side
//	mtlsconform report    the matrix from runs made elsewhere (--merge)
//	mtlsconform bench     measure what a run costs
//	mtlsconform sweep     remove containers and networks left by killed runs
//
// Exit status: 0 all passed (known deviations allowed), 1 a check failed,
// 2 a usage or environment error (no Docker, a file that cannot be read),
// 3 inconclusive: nothing failed, but the run did not verify the core
// clauses of the mode it checked (everything else was not applicable).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	tclog "github.com/testcontainers/testcontainers-go/log"
)

const (
	exitOK           = 0
	exitFailed       = 1
	exitUsage        = 2
	exitInconclusive = 3
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// envError is a problem with the machine or the inputs (no Docker, a file
// that does not parse): exit status 2, as opposed to a failed check.
type envError struct{ err error }

func (e *envError) Error() string { return e.err.Error() }
func (e *envError) Unwrap() error { return e.err }

// errChecksFailed means the run worked and found failures: exit status 1.
var errChecksFailed = errors.New("checks failed")

// errInconclusive means nothing failed but the run verified too little to
// stand as a verdict: exit status 3.
var errInconclusive = errors.New("inconclusive")

const usageText = `mtlsconform checks mutual-TLS load balancers against the conformance contract.

Usage:
  mtlsconform run [flags]        run the suite and write reports (see: mtlsconform run -h)
  mtlsconform onboard [flags]    check a partner's certificate against a truststore
  mtlsconform selftest [flags]   prove the suite catches broken load balancers
  mtlsconform matrix [flags]     run every reference implementation, side by side
  mtlsconform report --merge DIR...  the side-by-side matrix from runs made elsewhere
  mtlsconform bench [flags]      measure a run's cost (medians)
  mtlsconform ocsp-responder     serve the harness's OCSP responder for a live load balancer (C24)
  mtlsconform images             build the reference implementations' images that are missing
  mtlsconform sweep              remove containers and networks left by killed runs

Exit status: 0 passed (known deviations allowed), 1 a check failed, 2 usage or environment error,
3 inconclusive (the core clauses of the checked mode were not verified).
`

const exitInterrupted = 130

// main is the one place with process-wide behaviour: it applies the
// testcontainers settings the harness needs, quiets testcontainers' own
// narration, and turns SIGINT and SIGTERM into a cancelled context. A run
// then stops its scenarios, removes its containers, network and temporary
// files as it would after any run, and the process exits 130. A second
// signal ends the process at once; the next run sweeps what that left.
func main() {
	productapi.ServeIfAsked() // this executable, started as the backend, serves it and never returns
	if os.Getenv("GOGC") == "" {
		// A run is short and allocates fast (godog's bookkeeping, TLS,
		// reports): collecting at 4x the live heap rather than 2x cost a
		// matrix 3% less wall time (10 interleaved runs each) for 56 -> 82
		// MB at most.
		debug.SetGCPercent(400)
	}
	for k, v := range harness.TestcontainersEnv() {
		os.Setenv(k, v)
	}
	if os.Getenv("MTLSCONFORM_DOCKER_LOG") == "" {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	finished, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "\nmtlsconform: interrupted: removing this run's containers, network and temporary files…")
			stop() // a second signal ends the process at once
		case <-finished:
		}
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if ctx.Err() != nil {
		code = exitInterrupted
	}
	close(finished)
	// stop cancels ctx: the watcher must have left first, or it may take
	// the end of a finished command for an interruption.
	<-watched
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "onboard":
		err = cmdOnboard(ctx, args[1:], stdout, stderr)
	case "selftest":
		err = cmdSelftest(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "matrix":
		err = cmdMatrix(ctx, args[1:], stdout, stderr)
	case "report":
		err = cmdReport(args[1:], stdout, stderr)
	case "ocsp-responder":
		err = cmdOCSPResponder(ctx, args[1:], stdout, stderr)
	case "images":
		err = cmdImages(ctx, args[1:], stdout, stderr)
	case "sweep":
		err = cmdSweep(ctx, args[1:], stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mtlsconform: unknown command %q\n\n%s", args[0], usageText)
		return exitUsage
	}
	return exitCode(err, stderr)
}

func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errChecksFailed):
		return exitFailed
	case errors.Is(err, errInconclusive):
		fmt.Fprintf(stderr, "mtlsconform: %v; the coverage lines say what was not verified and why (an echo path, a CA key, the right --mode, other tags)\n", err)
		return exitInconclusive
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mtlsconform: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "mtlsconform: %v\n", err)
		return exitUsage
	}
}

// newFlagSet makes a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n", strings.TrimSpace(usage))
		any := false
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprint(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses a command's flags: -h prints its help; a wrong flag
// or a word where none is taken is a usage error of one line, which names
// the help (the flag package would print the error and the whole help).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsThenArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q: %s takes flags only (%s -h lists them)", fs.Arg(0), fs.Name(), fs.Name())
	}
	return nil
}

// parseFlagsThenArgs is parseFlags for a command that takes arguments
// after its flags.
func parseFlagsThenArgs(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	var said bytes.Buffer
	fs.SetOutput(&said)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		out.Write(said.Bytes())
		return err
	}
	if err != nil {
		return usagef("%v (%s -h lists its flags)", err, fs.Name())
	}
	return nil
}

// prefixLogger writes progress lines to w, each behind prefix.
func prefixLogger(w io.Writer, prefix string) func(format string, args ...any) {
	return func(format string, args ...any) { fmt.Fprintf(w, prefix+": "+format+"\n", args...) }
}

// stringList is a repeatable, comma-separating flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}
