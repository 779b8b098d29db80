package harness

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// While anything the harness made is open (an Environment, a temporary
// folder), SIGINT and SIGTERM remove it all before the process exits with
// status 130, so Ctrl-C in the middle of a run leaves nothing behind. A run
// killed outright (SIGKILL, a go test timeout) cannot clean up; the next
// run sweeps what it left.
var interrupts struct {
	sync.Mutex
	open map[any]func()
	ch   chan os.Signal
}

func onInterrupt(key any, cleanup func()) {
	interrupts.Lock()
	defer interrupts.Unlock()
	if interrupts.open == nil {
		interrupts.open = map[any]func(){}
	}
	interrupts.open[key] = cleanup
	if interrupts.ch != nil {
		return
	}
	ch := make(chan os.Signal, 1)
	interrupts.ch = ch
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig, ok := <-ch
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "\nmtlsconform: %v: removing this run's containers, network and temporary files…\n", sig)
		interrupts.Lock()
		fns := make([]func(), 0, len(interrupts.open))
		for _, fn := range interrupts.open {
			fns = append(fns, fn)
		}
		interrupts.Unlock()
		for _, fn := range fns {
			fn()
		}
		os.Exit(130)
	}()
}

func offInterrupt(key any) {
	interrupts.Lock()
	defer interrupts.Unlock()
	delete(interrupts.open, key)
	if len(interrupts.open) == 0 && interrupts.ch != nil {
		signal.Stop(interrupts.ch)
		close(interrupts.ch)
		interrupts.ch = nil
	}
}

func watchInterrupts(e *Environment) {
	onInterrupt(e, func() {
		if err := e.Close(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "mtlsconform: cleanup after interrupt: %v\n", err)
		}
	})
}

func unwatchInterrupts(e *Environment) { offInterrupt(e) }

const tempPrefix = "mtlsconform-run-"

// TempDir makes a private (0700) temporary folder for one run's files and
// returns a function that removes it. It is removed on interrupt too, and a
// later TempDir removes folders whose process is gone.
func TempDir() (string, func(), error) {
	SweepTempDirs()
	dir, err := os.MkdirTemp("", tempPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", nil, fmt.Errorf("make a temporary folder: %w (is TMPDIR writable?)", err)
	}
	key := new(int)
	remove := func() { os.RemoveAll(dir) }
	onInterrupt(key, remove)
	var once sync.Once
	return dir, func() { once.Do(func() { remove(); offInterrupt(key) }) }, nil
}

// SweepTempDirs removes temporary folders of runs whose process is gone.
func SweepTempDirs() []string {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	var removed []string
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), tempPrefix)
		pid, _, _ := strings.Cut(rest, "-")
		if n, err := strconv.Atoi(pid); err == nil && !processAlive(n) {
			if os.RemoveAll(m) == nil {
				removed = append(removed, m)
			}
		}
	}
	return removed
}
