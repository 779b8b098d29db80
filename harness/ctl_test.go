package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/lb"
)

// TestCommandsGoThroughTheControlPipe runs commands in a shared balancer
// that mounts folders of this machine: the control script runs them (it
// is their parent), arguments arrive as given, and the exit status and
// output come back; with nothing reading a pipe, the engine runs them.
func TestCommandsGoThroughTheControlPipe(t *testing.T) {
	env, root, _ := mountLab(t)
	ctx := context.Background()
	if _, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)}); err != nil {
		t.Fatal(err)
	}
	h := env.slotHosts[0]
	if h.ctl == "" {
		t.Fatal("a shared balancer with mounted folders has no control pipe")
	}
	cmd := []string{"sh", "-c", `printf '%s|' "$0" "$1"; tr '\0' ' ' </proc/$PPID/cmdline; exit 3`, "it's", "a  b"}
	out, ran := run(ctx, h, cmd)
	want := "exit status 3: it's|a  b|sh " + lb.ConfDir + "/" + ctlScript
	if !ran || out != want {
		t.Errorf("through the pipe: ran %v, got %q, want %q", ran, out, want)
	}
	if out, ran := run(ctx, h, []string{"true"}); !ran || out != "" {
		t.Errorf("a command that exits 0: ran %v, %q", ran, out)
	}
	if left, _ := filepath.Glob(filepath.Join(h.ctl, "*.*")); len(left) > 0 {
		t.Errorf("answers left in the command folder: %v", left)
	}

	// A pipe nobody reads (a balancer from before the control script):
	// the engine runs the command.
	saved := h.ctl
	defer func() { h.ctl = saved }()
	if h.ctl, _ = makeCtl(t.TempDir()); h.ctl == "" {
		t.Fatal("no pipe made")
	}
	out, ran = run(ctx, h, cmd)
	if !ran || !strings.HasPrefix(out, "exit status 3: it's|a  b|") || strings.Contains(out, ctlScript) {
		t.Errorf("through the engine: ran %v, got %q", ran, out)
	}
}

// TestControlScriptGoneIsAnError: a script that took the request and
// stopped reading (its container stopped) is an error within a fraction
// of a second, not a wait for the whole timeout.
func TestControlScriptGoneIsAnError(t *testing.T) {
	dir, err := makeCtl(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ctlRun(context.Background(), dir, []string{"true"}); !errors.Is(err, errNoCtl) {
		t.Fatalf("nothing reads the pipe: got %v, want errNoCtl", err)
	}
	pipe, err := os.OpenFile(filepath.Join(dir, ctlPipe), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond) // the request is in the pipe
		pipe.Close()                      // and its reader goes away, unanswered
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err = ctlRun(ctx, dir, []string{"sleep", "60"})
	if err == nil || errors.Is(err, errNoCtl) || ctx.Err() != nil {
		t.Fatalf("got %v (context: %v), want the script gone, said before the timeout", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "stopped reading") {
		t.Errorf("error does not say what happened: %v", err)
	}
}
