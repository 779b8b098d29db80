package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mtlsconform/harness/harnesstest"
)

// TestBinaryRunsOutsideTheSourceTree: the installed binary carries the
// features and the backend (its own executable serves it in the backend's
// container), so it runs from any folder, with no Go toolchain on PATH.
func TestBinaryRunsOutsideTheSourceTree(t *testing.T) {
	harnesstest.RequireDocker(t)
	bin := buildCLI(t)
	elsewhere := t.TempDir()
	cmd := exec.Command(bin, "run", "--tags", "@C1", "--out", filepath.Join(elsewhere, "out"))
	cmd.Dir = elsewhere
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "GO") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin") // no Go toolchain
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run from %s without Go on PATH: %v\n%s", elsewhere, err, out)
	}
	if !strings.Contains(string(out), "2 scenarios: 2 passed") {
		t.Errorf("unexpected result:\n%s", out)
	}
}

// buildCLI is the mtlsconform binary as released (static), built once for
// every test that runs it as a process of its own.
func buildCLI(t *testing.T) string { return binary(t) }

// TestFinishedCommandIsNotAnInterruption: the end of a command cancels the
// signal context; the process must not then tell the user it was
// interrupted. A help text is the quickest command, where the race showed
// most often (2 of 2 before the fix), so it is asked for many times.
func TestFinishedCommandIsNotAnInterruption(t *testing.T) {
	bin := buildCLI(t)
	for i := 0; i < 20; i++ {
		out, err := exec.Command(bin, "matrix", "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("matrix --help: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "interrupted") {
			t.Fatalf("attempt %d: a finished command said it was interrupted:\n%s", i+1, out)
		}
	}
}
