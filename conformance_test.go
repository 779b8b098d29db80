package mtlsconform_test

import (
	"context"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cucumber/godog"

	"mtlsconform/contract"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/runner"
)

// godog's own flags, with a godog. prefix: go test -godog.tags=@C1
// -godog.format=pretty -godog.concurrency=2. The same settings can come
// from MTLSCONFORM_TAGS, MTLSCONFORM_FORMAT, MTLSCONFORM_CONCURRENCY.
var godogOpts = godog.Options{Format: "progress", Concurrency: runner.DefaultConcurrency}

// BindFlags uses Go's flag package, which go test parses; godog's
// BindCommandLineFlags binds to pflag, which go test never parses.
func init() { godog.BindFlags("godog.", flag.CommandLine, &godogOpts) }

func envOr(name, current string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return current
}

// TestConformance runs every feature against the reference load balancer
// in real containers; each scenario is reported as a subtest: PASS, FAIL,
// or SKIP for a known deviation or a not-applicable scenario.
func TestConformance(t *testing.T) {
	harnesstest.RequireDocker(t)
	if !flag.Parsed() {
		flag.Parse()
	}
	conc := godogOpts.Concurrency
	if v := os.Getenv("MTLSCONFORM_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("MTLSCONFORM_CONCURRENCY=%q is not a number", v)
		}
		conc = n
	}
	var mutations []string
	if v := os.Getenv("MTLSCONFORM_MUTATIONS"); v != "" {
		mutations = strings.Split(v, ",")
	}
	var impl lb.Implementation
	if name := os.Getenv("MTLSCONFORM_IMPL"); name != "" {
		var err error
		if impl, err = all.Lookup(name); err != nil {
			t.Fatalf("MTLSCONFORM_IMPL: %v", err)
		}
	}
	res, err := runner.Run(context.Background(), runner.RunOptions{
		Implementation: impl,
		Tags:           envOr("MTLSCONFORM_TAGS", godogOpts.Tags),
		Format:         envOr("MTLSCONFORM_FORMAT", godogOpts.Format),
		Concurrency:    conc,
		TestingT:       t,
		Features:       os.DirFS("features"),
		Mutations:      mutations,
		Logf:           t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	counts := contract.Counts(res.Results)
	t.Logf("%d scenarios: %d passed, %d failed, %d known deviation(s), %d not applicable; %d containers started, %d load balancer configuration(s), wall %v",
		len(res.Results), counts[contract.Passed], counts[contract.Failed], counts[contract.KnownDeviation], counts[contract.NotApplicable],
		res.Stats.ContainersStarted, res.Stats.LoadBalancers, res.Wall.Round(1e6))
	if len(res.Results) == 0 {
		t.Fatal("no scenario ran: check the tag expression")
	}
	if res.GodogStatus != 0 && counts[contract.Failed] == 0 {
		t.Errorf("godog exited with status %d (undefined or pending steps?)", res.GodogStatus)
	}
}

func TestMain(m *testing.M) { harnesstest.Main(m) }
