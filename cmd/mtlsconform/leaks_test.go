package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mtlsconform/harness"
	"mtlsconform/harness/harnesstest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the CLI binary the tests built.
func TestMain(m *testing.M) {
	harnesstest.Prepare()
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds the CLI once, static as released (CGO_ENABLED=0), for the
// tests that need a process of its own: to interrupt or kill it, to time
// it, to run it outside the source tree. One build, not one per test: a
// link of this binary is seconds of CPU, and a cgo and a static build do
// not share the standard library's compiled packages.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mtlsconform-test-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "mtlsconform")
		build := exec.Command("go", "build", "-o", binPath, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build the CLI: %v", binErr)
	}
	return binPath
}

type child struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func startRun(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(binary(t), args...)}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitForContainers waits until the child owns at least one container, so
// the signal lands mid-run. It polls Docker; the deadline bounds it.
func waitForContainers(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		cs, _, err := harness.Owned(context.Background(), pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the run never started a container")
}

// interruptOnce starts the CLI with args, sends it SIGINT once under way
// says it is, and checks that it exits 130, says it cleans up, and leaves
// nothing behind.
func interruptOnce(t *testing.T, underWay func(*testing.T, int), args ...string) {
	t.Helper()
	c := startRun(t, args...)
	underWay(t, c.cmd.Process.Pid)
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := exitStatus(c.cmd.Wait()); code != 130 {
		t.Errorf("exit %d after SIGINT, want 130\n%s", code, c.stderr.String())
	}
	if !strings.Contains(c.stderr.String(), "removing this run's containers") {
		t.Errorf("no word of the cleanup on stderr: %s", c.stderr.String())
	}
	assertNothingLeft(t, c.cmd.Process.Pid, "after SIGINT mid-"+args[0])
}

// waitForCoHosted waits until a balancer of the child runs in the
// container its matrix's runs share: its process id file appears in the
// folder that container mounts.
func waitForCoHosted(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		for _, dir := range harness.TempDirsOf(pid) {
			if found, _ := filepath.Glob(filepath.Join(dir, "*", "own", "host.pid")); len(found) > 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no balancer of the matrix ever ran in its shared container")
}

func assertNothingLeft(t *testing.T, pid int, when string) {
	t.Helper()
	cs, ns, err := harness.Owned(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs)+len(ns) > 0 {
		t.Errorf("%s: %d container(s) and %d network(s) left: %v %v", when, len(cs), len(ns), cs, ns)
	}
	if dirs := harness.TempDirsOf(pid); len(dirs) > 0 {
		t.Errorf("%s: temporary folders left: %v", when, dirs)
	}
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestNoLeaks checks what a run leaves behind after passing, failing,
// SIGINT, and SIGKILL followed by a new run.
func TestNoLeaks(t *testing.T) {
	t.Parallel() // what it counts is its children's own (harness.Owned by pid)
	harnesstest.RequireDocker(t)
	out := t.TempDir()

	t.Run("passing full run", func(t *testing.T) {
		c := startRun(t, "run", "--out", out)
		err := c.cmd.Wait()
		if code := exitStatus(err); code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, c.stdout.String(), c.stderr.String())
		}
		assertNothingLeft(t, c.cmd.Process.Pid, "after a passing run")
		// A full run's output and reports hold no key material.
		noKeyMaterial(t, out, c.stdout.String(), c.stderr.String())
	})
	t.Run("failing run", func(t *testing.T) {
		c := startRun(t, "run", "--out", t.TempDir(), "--tags", "@C13", "--mutation", "pass-client-verify")
		if code := exitStatus(c.cmd.Wait()); code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, c.stdout.String())
		}
		assertNothingLeft(t, c.cmd.Process.Pid, "after a failing run")
	})
	t.Run("SIGINT mid-run", func(t *testing.T) {
		interruptOnce(t, waitForContainers, "run", "--out", t.TempDir())
	})
	t.Run("passing matrix", func(t *testing.T) {
		c := startRun(t, "matrix", "--out", t.TempDir())
		if code := exitStatus(c.cmd.Wait()); code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, c.stdout.String(), c.stderr.String())
		}
		assertNothingLeft(t, c.cmd.Process.Pid, "after a passing matrix")
	})
	t.Run("SIGINT mid-matrix", func(t *testing.T) {
		// The matrix's runs share one container (harness.CoHost): it goes
		// with them. The signal comes once a balancer runs in it.
		interruptOnce(t, waitForCoHosted, "matrix", "--out", t.TempDir())
	})
	t.Run("SIGKILL then a new run", func(t *testing.T) {
		c := startRun(t, "run", "--out", t.TempDir())
		pid := c.cmd.Process.Pid
		waitForContainers(t, pid)
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		c.cmd.Wait()
		if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("the run ended before SIGKILL reached it (%v): the test did not kill it mid-run", c.cmd.ProcessState)
		}
		cs, _, err := harness.Owned(context.Background(), pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			// It had containers (waitForContainers) and died of the
			// signal: another environment's sweep got there first.
			t.Log("what the killed run left was already swept by another environment of this test process")
		}
		next := startRun(t, "run", "--out", t.TempDir(), "--tags", "@C1")
		if code := exitStatus(next.cmd.Wait()); code != 0 {
			t.Fatalf("next run: exit %d\n%s", code, next.stderr.String())
		}
		// The run says it swept, unless another sweeper got there first:
		// go test runs the harness package's environments meanwhile, and
		// they sweep what dead processes left too. Either way nothing may
		// be left, and the sweep must not have failed.
		if strings.Contains(next.stderr.String(), "cleanup of earlier runs") {
			t.Errorf("the next run's sweep failed: %s", next.stderr.String())
		} else if !strings.Contains(next.stderr.String(), "left by earlier runs") {
			t.Logf("the next run swept nothing: another process removed what the killed run left")
		}
		assertNothingLeft(t, pid, "after a killed run and a new run")
		assertNothingLeft(t, next.cmd.Process.Pid, "after the new run")
	})
}

// TestNoDocker: without a Docker engine the run stops at once with exit
// status 2 and says what to do.
func TestNoDocker(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "run", "--out", t.TempDir())
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///nonexistent/docker.sock")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := exitStatus(err); code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, stderr.String())
	}
	for _, want := range []string{"no Docker engine answered", "scripts/prereqs.sh"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q: %s", want, stderr.String())
		}
	}
	if dirs := harness.TempDirsOf(cmd.Process.Pid); len(dirs) > 0 {
		t.Errorf("temporary folders left: %v", dirs)
	}
}
