package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mtlsconform/bench"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/runner"
	"mtlsconform/selftest"
)

// TestSelftestKillsEveryMutant runs the mutation matrix: the conformant
// reference passes and every deliberately broken one is caught.
func TestSelftestKillsEveryMutant(t *testing.T) {
	harnesstest.RequireDocker(t)
	t.Parallel() // its own environment; the long end-to-end tests overlap
	if testing.Short() {
		t.Skip("the mutation matrix takes about a minute and a half; run without -short")
	}
	out := t.TempDir()
	// Focused: each mutant against the scenarios of the clauses it breaks,
	// which also proves the catalogue names the right clauses.
	code, stdout, stderr := cli(t, "selftest", "--focused", "--out", out)
	total := len(runner.Mutations())
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if want := fmt.Sprintf("kill rate: %d/%d (100%%)", total, total); !strings.Contains(stdout, want) {
		t.Errorf("output lacks %q:\n%s", want, stdout)
	}
	data, err := os.ReadFile(filepath.Join(out, "selftest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep selftest.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.BaselineFailed) != 0 || rep.Total != total || rep.Caught != total {
		t.Errorf("report: baseline failures %v, caught %d/%d", rep.BaselineFailed, rep.Caught, rep.Total)
	}
	t.Log(stdout)
}

func TestSelftestRejectsUnknownMutation(t *testing.T) {
	code, _, stderr := cli(t, "selftest", "--mutation", "no-such-thing")
	if code != exitUsage || !strings.Contains(stderr, "unknown mutation") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestBenchRuns checks the benchmark command works end to end on a tiny
// budget; it asserts what was measured, never how fast.
func TestBenchRuns(t *testing.T) {
	harnesstest.RequireDocker(t)
	t.Parallel() // it asserts what was measured, never how fast: others may run beside it
	out := t.TempDir()
	// The binary, not the test: the bench times whole processes of itself.
	// The full-suite figures on @C1 alone: the command end to end, at a
	// fraction of the whole suite's cost.
	cmd := exec.Command(buildCLI(t), "bench", "--runs", "1", "--suite-tags", "@C1", "--cold-runs", "0", "--requests", "3",
		"--matrix-runs", "0", "--config-runs", "1", "--config-impl", "nginx", "--warm-runs", "0", "--out", out)
	var stdoutBuf, stderrBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdoutBuf, &stderrBuf
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdoutBuf.String(), stderrBuf.String())
	}
	stdout := stdoutBuf.String()
	var fig bench.Figures
	data, err := os.ReadFile(filepath.Join(out, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &fig); err != nil {
		t.Fatal(err)
	}
	if len(fig.WarmWalls) != 1 || fig.Containers[0] < 1 || len(fig.HarnessRequestMS) != 3 || len(fig.CurlRequestMS) != 3 || len(fig.SharedScenarioMS) == 0 {
		t.Errorf("figures incomplete: %+v", fig)
	}
	if !strings.Contains(stdout, "| warm suite @C1, 2 scenarios") || !strings.Contains(stdout, "| nginx suite @C1, whole process") {
		t.Errorf("no table printed:\n%s", stdout)
	}
	// --baseline-runs defaults to --runs: one of each at this budget.
	if len(fig.BaselineWalls) != 1 || len(fig.CoreWalls) != 1 || len(fig.SingleWalls) != 1 ||
		fig.CoreOverBaseline <= 0 || fig.Breakdown == nil || fig.Breakdown.TotalMS <= 0 {
		t.Errorf("baseline comparison incomplete: %+v", fig)
	}
	if !strings.Contains(stdout, "| shell-script baseline") || !strings.Contains(stdout, "Breakdown of one harness run") {
		t.Errorf("no baseline comparison printed:\n%s", stdout)
	}
	// The matrix is timed the same way as these two, by running this
	// program; at this budget it is left out (--matrix-runs 0).
	if len(fig.FullProcessWalls) != 1 || len(fig.SingleProcessWalls) != 1 || len(fig.MatrixWalls) != 0 {
		t.Errorf("whole processes not timed as asked: %+v", fig)
	}
	if len(fig.ConfigCosts) != 1 || fig.ConfigCosts[0].Implementation != "nginx" {
		t.Fatalf("configuration costs: %+v, want nginx's alone", fig.ConfigCosts)
	}
	for _, c := range fig.ConfigCosts {
		if len(c.SlotMS) != 1 || len(c.SlotIdleMS) != 1 || len(c.ContainerMS) != 1 || c.Kept != "slot" {
			t.Errorf("%s: configuration costs incomplete: %+v", c.Implementation, c)
		}
	}
	if !strings.Contains(stdout, "Against the speed targets") || !strings.Contains(stdout, "| nginx | ") {
		t.Errorf("no targets or configuration costs printed:\n%s", stdout)
	}
}
