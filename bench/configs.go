package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/harness"
	"mtlsconform/lb"
)

// ConfigCost is what one more configuration costs an implementation once
// its first runs: as a slot of the shared balancer (a reload) and as a
// container of its own. Each sample is one configuration, asked for after
// the previous one served, from the call to a TLS handshake with it.
type ConfigCost struct {
	Implementation string `json:"implementation"`
	// SlotMS: asked for as soon as the previous one served; SlotIdleMS:
	// asked for a while after (a balancer may pause after a reload: nginx's
	// master waits 100 ms before it takes the next one).
	SlotMS            []float64 `json:"slot_ms"`
	SlotIdleMS        []float64 `json:"slot_idle_ms"`
	ContainerMS       []float64 `json:"container_ms"`
	SlotMedianMS      float64   `json:"slot_median_ms"`
	SlotIdleMedianMS  float64   `json:"slot_idle_median_ms"`
	ContainerMedianMS float64   `json:"container_median_ms"`
	// Kept is the way the harness uses for the implementation: "slot"
	// where it can share a balancer, "process" where each configuration
	// is a balancer process of its own in a shared container (its figures
	// are then in the slot columns), else "container".
	Kept string `json:"kept"`
}

// configCosts times n further configurations per implementation, each
// way.
func configCosts(ctx context.Context, impls []lb.Implementation, n int, logf func(string, ...any)) ([]ConfigCost, error) {
	var out []ConfigCost
	for _, impl := range impls {
		c := ConfigCost{Implementation: impl.Name(), Kept: "container"}
		_, multiplexed := impl.(lb.Multiplexed)
		_, processes := impl.(lb.Processes)
		if multiplexed || processes {
			c.Kept = "slot"
			if processes {
				c.Kept = "process"
			}
			slot, err := furtherConfigs(ctx, impl, false, n, 0)
			if err != nil {
				return nil, fmt.Errorf("%s, slots: %w", impl.Name(), err)
			}
			idle, err := furtherConfigs(ctx, impl, false, n, slotPause)
			if err != nil {
				return nil, fmt.Errorf("%s, slots: %w", impl.Name(), err)
			}
			c.SlotMS, c.SlotIdleMS = slot, idle
		}
		cont, err := furtherConfigs(ctx, impl, true, n, 0)
		if err != nil {
			return nil, fmt.Errorf("%s, a container per configuration: %w", impl.Name(), err)
		}
		c.ContainerMS = cont
		c.SlotMedianMS, c.SlotIdleMedianMS, c.ContainerMedianMS = median(c.SlotMS), median(c.SlotIdleMS), median(c.ContainerMS)
		way := c.Kept
		if way == "container" {
			way = "slot"
		}
		logf("%s: a further configuration costs %.0f ms as a %s (%.0f ms on an idle balancer), %.0f ms as a container",
			impl.Name(), c.SlotMedianMS, way, c.SlotIdleMedianMS, c.ContainerMedianMS)
		out = append(out, c)
	}
	return out, nil
}

// slotPause is how long the idle series waits after a configuration
// served before it asks for the next.
const slotPause = 250 * time.Millisecond

func furtherConfigs(ctx context.Context, impl lb.Implementation, containers bool, n int, pause time.Duration) (_ []float64, err error) {
	env, err := harness.Start(ctx, harness.Options{Implementation: impl, ContainerPerConfig: containers})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := env.Close(context.WithoutCancel(ctx)); err == nil {
			err = cerr
		}
	}()
	var samples []float64
	for i := range n + 1 {
		root, err := pki.NewRootCA(fmt.Sprintf("Bench Root CA %d", i))
		if err != nil {
			return nil, err
		}
		if i > 0 {
			time.Sleep(pause) // the balancer's idle time, not measured
		}
		start := time.Now()
		if _, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)}); err != nil {
			return nil, err
		}
		if i > 0 { // the first one waits for the balancer to start
			samples = append(samples, ms(time.Since(start)))
		}
	}
	return samples, nil
}

// process times one whole mtlsconform process, which must pass (exit 0).
func process(ctx context.Context, self string, env []string, args ...string) (float64, error) {
	out, remove, err := harness.TempDir() // swept by a later run if this one is killed
	if err != nil {
		return 0, err
	}
	defer remove()
	cmd := exec.CommandContext(ctx, self, append(args, "--out", out)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// Both streams in one buffer, in the order written: a failed
	// scenario is reported on stdout, a harness error on stderr.
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("mtlsconform %s: %v\n%s", strings.Join(args, " "), err, tail(output.String(), 40))
	}
	return took.Seconds(), nil
}
