package bench

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mtlsconform/harness"
)

// baselineScript is bench/baseline.sh: embedded so that the installed
// binary, with no source tree, can still measure what it is compared with.
//
//go:embed baseline.sh
var baselineScript []byte

// checkBaselineTools is run before the first baseline so that a missing
// tool is one clear message rather than a failed script.
func checkBaselineTools() error {
	var missing []string
	for _, t := range [][2]string{
		{"bash", "apt-get install bash"},
		{"docker", "install Docker"},
		{"openssl", "apt-get install openssl"},
		{"curl", "apt-get install curl"},
	} {
		if _, err := exec.LookPath(t[0]); err != nil {
			missing = append(missing, fmt.Sprintf("%s is missing: %s (scripts/prereqs.sh installs it)", t[0], t[1]))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the shell-script baseline needs docker, openssl and curl: %s", strings.Join(missing, "; "))
	}
	return nil
}

// runBaseline writes the script to a private temporary folder, runs it
// once against image and returns its wall time: certificates, two
// containers, nine curl calls and the removal of the containers.
func runBaseline(ctx context.Context, image string, n int) (time.Duration, error) {
	// On disk, where a team's script puts its files: the harness's own
	// folder is in memory, which made this yardstick 10-15% faster.
	dir, remove, err := harness.SystemTempDir()
	if err != nil {
		return 0, err
	}
	defer remove()
	script := filepath.Join(dir, "baseline.sh")
	if err := os.WriteFile(script, baselineScript, 0o700); err != nil {
		return 0, fmt.Errorf("write the baseline script: %w", err)
	}
	// The run id labels the script's containers, so that they can be found
	// and removed here if the script dies before its trap runs.
	run := fmt.Sprintf("%d-%d", os.Getpid(), n)
	defer removeBaselineContainers(context.WithoutCancel(ctx), run)
	cmd := exec.CommandContext(ctx, "bash", script, image)
	cmd.Env = append(os.Environ(), "BASELINE_RUN_ID="+run, "TMPDIR="+dir)
	// Interrupted, the script gets SIGTERM and its trap removes what it
	// started; SIGKILL only if it does not end.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return 0, fmt.Errorf("the shell-script baseline found failing checks against %s; a comparison needs it to pass:\n%s",
			image, tail(out.String(), 30))
	case err != nil:
		return 0, fmt.Errorf("run the shell-script baseline: %w\n%s\n(is Docker running, and is %s on this machine? mtlsconform run builds it)",
			err, tail(out.String(), 30), image)
	}
	return took, nil
}

// removeBaselineContainers removes what a killed script left.
func removeBaselineContainers(ctx context.Context, run string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ids, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label=org.mtlsconform.baseline="+run).Output()
	if err != nil || len(bytes.TrimSpace(ids)) == 0 {
		return
	}
	_ = exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"… " + strconv.Itoa(len(lines)-n) + " line(s) before"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// dockerVersion is the Docker server's version, for the machine's
// description; empty when the CLI cannot say.
func dockerVersion(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}})").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
