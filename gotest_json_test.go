package mtlsconform_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"mtlsconform/harness/harnesstest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGoTestCountsWhatTheRunCounts runs the suite under `go test -json`
// with a broken reference and reads the events as test2json consumers
// (gotestsum, IDEs, CI summaries) do: a failed scenario is a fail, a known
// deviation a skip with its reason, and only a passed scenario a pass.
func TestGoTestCountsWhatTheRunCounts(t *testing.T) {
	harnesstest.RequireDocker(t)
	if os.Getenv("MTLSCONFORM_INNER_GO_TEST") != "" {
		t.Skip("inside the go test this test runs")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.CommandContext(t.Context(), goBin, "test", "-json", "-count=1", "-run", "^TestConformance$", ".",
		"-godog.tags=@C1,@C11,@C5", "-godog.format=progress")
	cmd.Env = append(os.Environ(), "MTLSCONFORM_MUTATIONS=no-cert-403", "MTLSCONFORM_INNER_GO_TEST=1")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("go test passed a broken reference")
	}
	actions := map[string]string{}
	output := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct{ Action, Test, Output string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not test2json output: %q", sc.Text())
		}
		name, ok := strings.CutPrefix(ev.Test, "TestConformance/")
		if !ok {
			continue
		}
		switch ev.Action {
		case "pass", "fail", "skip":
			actions[name] = ev.Action
		case "output":
			output[name] += ev.Output
		}
	}
	counts := map[string]int{}
	for name, action := range actions {
		counts[action]++
		switch {
		case strings.Contains(name, "expired"):
			if action != "skip" || !strings.Contains(output[name], "known deviation of reference-nginx from C11") {
				t.Errorf("%s: %s, want skip with the deviation's reason; output:\n%s", name, action, output[name])
			}
		case strings.Contains(name, "without_a_certificate"):
			if action != "fail" || !strings.Contains(output[name], "got HTTP 403") {
				t.Errorf("%s: %s, want fail saying what came back; output:\n%s", name, action, output[name])
			}
		case action != "pass":
			t.Errorf("%s: %s, want pass", name, action)
		}
	}
	if counts["fail"] != 2 || counts["skip"] != 2 || counts["pass"] == 0 {
		t.Errorf("go test -json counted %v; want 2 fail, 2 skip and some pass", counts)
	}
}
