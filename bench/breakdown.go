package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/lb"
)

// Probe holds what a run does not report about itself, timed apart with
// the run's options: the images checked, one environment started, one load
// balancer started, the environment closed, and the certificates a
// core-tag run makes.
type Probe struct {
	ImagesMS    float64 `json:"images_ms"`     // EnsureImage + EnsureBackendImage, images present
	StartMS     float64 `json:"start_ms"`      // harness.Start: sweep, server PKI, images, network, backend
	LBStartMS   float64 `json:"lb_start_ms"`   // one load balancer, from asked for to serving TLS
	CloseMS     float64 `json:"close_ms"`      // env.Close: one load balancer, the backend, the network
	ServerPKIMS float64 `json:"server_pki_ms"` // the run's server CA and certificate
	ClientPKIMS float64 `json:"client_pki_ms"` // the CAs and clients the core features name
}

// Breakdown splits one harness run's wall time into its parts. The open
// phase, the scenario phase and the teardown are measured from outside
// the run (the call, the scenarios' own start and end times, the return).
// Containers are measured from the scenarios too: the wall time during
// which a scenario that started a load balancer was running (those
// scenarios wait for their container; at concurrency > 1 the others run
// meanwhile, so summing container starts would overstate the wall). Images
// and PKI are estimated from a Probe, because the harness does not time
// them, and start-up and scenarios are what is left of their phase.
type Breakdown struct {
	Tags          string `json:"tags"`
	Scenarios     int    `json:"scenarios"`
	LoadBalancers int    `json:"load_balancers"`
	Concurrency   int    `json:"concurrency"`
	// Measured.
	TotalMS         float64 `json:"total_ms"`          // call to return
	OpenMS          float64 `json:"open_ms"`           // call to the first scenario's start
	ScenarioPhaseMS float64 `json:"scenario_phase_ms"` // first scenario's start to the last one's end
	TeardownMS      float64 `json:"teardown_ms"`       // last scenario's end to return
	// ContainersMS is the wall time covered by scenarios that started a
	// load balancer (their own few calls included).
	ContainersMS float64 `json:"containers_ms"`
	// Estimated from the probe.
	ImagesMS float64 `json:"images_ms"`
	PKIMS    float64 `json:"pki_ms"`
	// LBStartMS and CloseMS are the probe's one load balancer start and
	// its close, to compare with the run's figures.
	LBStartMS float64 `json:"lb_start_ms"`
	CloseMS   float64 `json:"probe_close_ms"`
	// Derived: the measured phase less the estimates inside it.
	StartupMS   float64 `json:"startup_ms"`   // open phase − images − server PKI
	ScenariosMS float64 `json:"scenarios_ms"` // scenario phase − containers − client PKI
}

// breakDown splits a run called at start that returned at end.
func breakDown(tags string, concurrency int, start, end time.Time, res contract.RunResult, p Probe) Breakdown {
	b := Breakdown{
		Tags: tags, Scenarios: len(res.Results), LoadBalancers: res.Stats.LoadBalancers, Concurrency: concurrency,
		TotalMS: ms(end.Sub(start)), ImagesMS: p.ImagesMS, PKIMS: p.ServerPKIMS + p.ClientPKIMS,
		LBStartMS: p.LBStartMS, CloseMS: p.CloseMS,
	}
	var starting []interval
	first, last := end, start
	for _, r := range res.Results {
		if r.StartedAt.IsZero() {
			continue
		}
		if r.StartedAt.Before(first) {
			first = r.StartedAt
		}
		if e := r.StartedAt.Add(r.Duration); e.After(last) {
			last = e
		}
		if r.StartedLoadBalancer {
			starting = append(starting, interval{r.StartedAt, r.StartedAt.Add(r.Duration)})
		}
	}
	b.ContainersMS = ms(covered(starting))
	if first.After(last) { // no scenario ran: it was all opening and closing
		first, last = end, end
	}
	b.OpenMS, b.ScenarioPhaseMS, b.TeardownMS = ms(first.Sub(start)), ms(last.Sub(first)), ms(end.Sub(last))
	b.StartupMS = max(0, b.OpenMS-p.ImagesMS-p.ServerPKIMS)
	b.ScenariosMS = max(0, b.ScenarioPhaseMS-b.ContainersMS-p.ClientPKIMS)
	return b
}

type interval struct{ from, to time.Time }

// covered is how long at least one of the intervals was open.
func covered(iv []interval) time.Duration {
	slices.SortFunc(iv, func(a, b interval) int { return a.from.Compare(b.from) })
	var total time.Duration
	var cur interval
	for i, x := range iv {
		switch {
		case i == 0:
			cur = x
		case !x.from.After(cur.to): // overlaps the current run of intervals
			if x.to.After(cur.to) {
				cur.to = x.to
			}
		default:
			total += cur.to.Sub(cur.from)
			cur = x
		}
	}
	return total + cur.to.Sub(cur.from)
}

// timePKI makes the certificates a core-tag run makes (the server's, and
// the CAs and clients the core features name) and times each half.
func timePKI() (server, client time.Duration, err error) {
	start := time.Now()
	ca, err := pki.NewRootCA("bench Server CA")
	if err == nil {
		_, err = ca.IssueServer("bench load balancer", []string{lb.ServerName, "127.0.0.1", "::1"})
	}
	if err != nil {
		return 0, 0, fmt.Errorf("time the server PKI: %w", err)
	}
	server = time.Since(start)
	start = time.Now()
	if err := coreClientPKI(); err != nil {
		return 0, 0, fmt.Errorf("time the client PKI: %w", err)
	}
	return server, time.Since(start), nil
}

// coreClientPKI mirrors the features' Backgrounds and Givens for the core
// tags: two roots, one intermediate, two issued clients and five
// self-signed ones.
func coreClientPKI() error {
	root, err := pki.NewRootCA("Partner Root CA")
	if err != nil {
		return err
	}
	issuing, err := root.NewIntermediate("Partner Issuing CA")
	if err != nil {
		return err
	}
	unknown, err := pki.NewRootCA("Unknown Root CA")
	if err != nil {
		return err
	}
	if _, err := issuing.IssueClient("partner-a"); err != nil {
		return err
	}
	if _, err := unknown.IssueClient("stranger"); err != nil {
		return err
	}
	for _, name := range []string{"self-stranger", "client-1", "client-2", "client-3", "client-unlisted"} {
		if _, err := pki.SelfSignedClient(name); err != nil {
			return err
		}
	}
	return nil
}

// markdown is the breakdown's table: every row says how it was obtained.
func (b *Breakdown) markdown() string {
	var s strings.Builder
	fmt.Fprintf(&s, "Breakdown of one harness run (%s, %d scenarios, concurrency %d):\n\n", b.Tags, b.Scenarios, b.Concurrency)
	s.WriteString("| part | ms | how |\n|---|---|---|\n")
	row := func(part string, v float64, how string) { fmt.Fprintf(&s, "| %s | %.0f | %s |\n", part, v, how) }
	row("start-up: sweep, network if one is made, backend, shared balancer", b.StartupMS, "derived: open phase − images − server PKI")
	row("images (ensure, already present)", b.ImagesMS, "estimated: timed apart")
	row("PKI: server and client certificates", b.PKIMS, "estimated: the same certificates made apart")
	row(fmt.Sprintf("load balancers: %d configuration(s) brought up", b.LoadBalancers), b.ContainersMS,
		"measured: wall time while a scenario that started one ran")
	row("scenarios: calls and checks", b.ScenariosMS, "derived: scenario phase − load balancers − client PKI")
	row("teardown", b.TeardownMS, "measured: last scenario's end to the run's return")
	row("total", b.TotalMS, "measured")
	row("… open phase", b.OpenMS, "measured: call to first scenario's start")
	row("… scenario phase", b.ScenarioPhaseMS, "measured: first scenario's start to last one's end")
	row("… the first configuration: balancer started, slot up", b.LBStartMS, "timed apart, for comparison")
	row("… close: backend, the balancer, a network if one was made", b.CloseMS, "timed apart, for comparison")
	return s.String()
}
