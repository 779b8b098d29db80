package harness

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// While any Environment is open, SIGINT and SIGTERM close every open
// environment (containers, network) before the process exits with status
// 130, so Ctrl-C in the middle of a run leaves nothing behind. A run killed
// outright (SIGKILL, a go test timeout) cannot clean up; the next Start
// sweeps what it left.
var interrupts struct {
	sync.Mutex
	open map[*Environment]struct{}
	ch   chan os.Signal
}

func watchInterrupts(e *Environment) {
	interrupts.Lock()
	defer interrupts.Unlock()
	if interrupts.open == nil {
		interrupts.open = map[*Environment]struct{}{}
	}
	interrupts.open[e] = struct{}{}
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
		fmt.Fprintf(os.Stderr, "\nmtlsconform: %v: removing this run's containers and network…\n", sig)
		interrupts.Lock()
		envs := make([]*Environment, 0, len(interrupts.open))
		for env := range interrupts.open {
			envs = append(envs, env)
		}
		interrupts.Unlock()
		for _, env := range envs {
			if err := env.Close(context.Background()); err != nil {
				fmt.Fprintf(os.Stderr, "mtlsconform: cleanup after interrupt: %v\n", err)
			}
		}
		os.Exit(130)
	}()
}

func unwatchInterrupts(e *Environment) {
	interrupts.Lock()
	defer interrupts.Unlock()
	delete(interrupts.open, e)
	if len(interrupts.open) == 0 && interrupts.ch != nil {
		signal.Stop(interrupts.ch)
		close(interrupts.ch)
		interrupts.ch = nil
	}
}
