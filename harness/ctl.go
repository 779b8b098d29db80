package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mtlsconform/lb"
)

// A shared balancer that mounts folders of this machine runs its commands
// (a process of its own started or reloaded, a configuration test, Caddy's
// and Traffic Server's processes) through a named pipe in its own/ folder
// rather than through the engine. An exec through the engine costs a runc
// process, a shim round trip and about 50 ms of CPU; a line in a pipe, a
// fork of a shell already running.
//
// The control script reads one request a line, "ID COMMAND", COMMAND being
// the argument list quoted for the shell, and runs each in the background;
// it writes what the command printed to ID.out and then its exit status to
// ID.rc, a line: an answer is read once it ends with its newline (no mv:
// every program started in the container costs its reads through the
// engine's storage driver). Only this machine's user (and root) can write
// to the pipe (0600).
const (
	ctlScript = "ctl.sh"   // under lb.ConfDir, from the conf/ folder
	ctlDir    = ".ctl"     // under own/: the pipe and the answers
	ctlPipe   = "requests" // in ctlDir
	ctlPoll   = 3 * time.Millisecond
	ctlAlive  = 100 * time.Millisecond // how often a wait checks the script still reads
	ctlMaxReq = 4000                   // below PIPE_BUF: a write of a line is never split
)

var ctlScriptText = ctlScriptFor(lb.ConfDir+"/own/"+ctlDir, "")

// ctlScriptFor is the control script reading the pipe in dir; it prints
// ready, if given, once it reads.
func ctlScriptFor(dir, ready string) string {
	text := `#!/bin/sh
# Rendered by mtlsconform: runs the harness's commands in this container,
# one a line ("ID COMMAND") from the pipe ` + dir + `/` + ctlPipe + `,
# each in the background; its output goes to ID.out, then its status to ID.rc
# (a line: the answer is whole once it ends with a newline).
dir=` + dir + `
exec 3<>"$dir/` + ctlPipe + `" || exit 1
`
	if ready != "" {
		text += "echo '" + ready + "'\n"
	}
	return text + ctlLoop
}

const ctlLoop = `while IFS= read -r line <&3; do
	id=${line%% *}
	cmd=${line#* }
	( (
		exec 3<&- # a daemon it starts keeps no hold on the pipe
		eval "$cmd" >"$dir/$id.out" 2>&1 </dev/null
		echo $? >"$dir/$id.rc"
	) & )
done
`

// ctlCommand wraps a shared balancer's command so that the control script
// runs beside it; the balancer is still the container's first process.
func ctlCommand(cmd []string) []string {
	return append([]string{"sh", "-c", `sh ` + lb.ConfDir + `/` + ctlScript + ` & exec "$@"`, "mtlsconform-host"}, cmd...)
}

// makeCtl makes the folder and the pipe the control script reads, in own
// (this machine's folder mounted as own/), and answers the folder. A pipe
// already there (a kept balancer's script reads it) is kept.
func makeCtl(own string) (string, error) {
	dir := filepath.Join(own, ctlDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("make the shared balancer's command folder: %w", err)
	}
	pipe := filepath.Join(dir, ctlPipe)
	if st, err := os.Lstat(pipe); err == nil && st.Mode()&os.ModeNamedPipe != 0 {
		return dir, nil
	}
	os.Remove(pipe)
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		return "", fmt.Errorf("make the shared balancer's command pipe %s: %w", pipe, err)
	}
	return dir, nil
}

// errNoCtl says the control script does not read its pipe (not started
// yet, or a balancer without one): the command goes through the engine.
var errNoCtl = errors.New("no control script reads the pipe")

// ctlRun runs cmd through the control pipe in dir: its exit status and
// what it printed (at most 4 KiB). errNoCtl when nothing reads the pipe
// or the command cannot be sent as one line.
func ctlRun(ctx context.Context, dir string, cmd []string) (int, string, error) {
	var id [8]byte
	rand.Read(id[:])
	name := hex.EncodeToString(id[:])
	line, ok := ctlLine(name, cmd)
	if !ok {
		return 0, "", errNoCtl
	}
	pipe := filepath.Join(dir, ctlPipe)
	f, err := os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, "", errNoCtl // ENXIO: no reader
	}
	_, err = io.WriteString(f, line)
	f.Close()
	if err != nil {
		return 0, "", errNoCtl // a full pipe (EAGAIN): the engine is the safer way
	}
	rc, out := filepath.Join(dir, name+".rc"), filepath.Join(dir, name+".out")
	defer os.Remove(out)
	defer os.Remove(rc)
	tick := time.NewTicker(ctlPoll)
	defer tick.Stop()
	checked := time.Now()
	for {
		if data, err := os.ReadFile(rc); err == nil && strings.HasSuffix(string(data), "\n") {
			code, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				return 0, "", fmt.Errorf("the control script answered %q for %s", data, strings.Join(cmd, " "))
			}
			printed, _ := readLimited(out, 4096)
			return code, printed, nil
		}
		if time.Since(checked) > ctlAlive {
			checked = time.Now()
			f, err := os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				return 0, "", fmt.Errorf("the shared balancer stopped reading its commands while %s ran (did the container stop?)", strings.Join(cmd, " "))
			}
			f.Close()
		}
		select {
		case <-ctx.Done():
			return 0, "", fmt.Errorf("%s: %w", strings.Join(cmd, " "), ctx.Err())
		case <-tick.C:
		}
	}
}

// ctlLine is the request line for cmd, and whether the pipe takes it:
// one line, short enough to be written at once.
func ctlLine(id string, cmd []string) (string, bool) {
	var line strings.Builder
	line.WriteString(id)
	for _, a := range cmd {
		if strings.ContainsAny(a, "\n\x00") {
			return "", false
		}
		line.WriteString(" '" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	line.WriteString("\n")
	return line.String(), line.Len() <= ctlMaxReq
}

func readLimited(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, n))
	return string(b), err
}
