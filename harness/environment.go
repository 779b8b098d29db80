// Package harness runs a reference mutual-TLS load balancer (any
// lb.Implementation it is given) and the product-list backend in
// containers; partner calls them. One balancer per run serves every configuration the run asks
// for, each in a slot of its own added by a reload (lb.Multiplexed); a
// container per configuration remains the other way. Images are built
// offline from Debian packages; every container (and network, where a run
// needs its own) is labelled and removed when the run ends.
package harness

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/lb"
	"mtlsconform/partner"
)

// Timeouts in one place. Each bounds a wait for a condition; none is a
// sleep.
type Timeouts struct {
	ContainerReady time.Duration // a container from start to serving
	Request        time.Duration // one partner request, dial to last byte
	Cleanup        time.Duration // removing the run's containers and network
}

// DefaultTimeouts suit a small CI machine.
func DefaultTimeouts() Timeouts {
	return Timeouts{ContainerReady: 60 * time.Second, Request: partner.DefaultTimeout, Cleanup: 30 * time.Second}
}

// Options configure an Environment.
type Options struct {
	// Implementation is the reference balancer (lb/all.Default() is nginx);
	// Start refuses to run without one.
	Implementation lb.Implementation
	// Image replaces the implementation's own image (an upstream one where
	// a registry is reachable); it is used as it is, never built.
	Image    string
	Timeouts Timeouts
	// Products, when set, is what the backend serves instead of its own
	// list: a stand-in for a real API behind a live balancer.
	Products []productapi.Product
	// Logf receives progress lines (image builds, container starts).
	Logf func(format string, args ...any)
	// ContainerPerConfig starts a container for every configuration even
	// where the implementation can serve them all from one balancer by
	// reloads (lb.Multiplexed): the slower way, kept to compare the two.
	ContainerPerConfig bool
	// PublishPorts publishes the containers' ports on 127.0.0.1 even where
	// this machine reaches the run's network directly.
	PublishPorts bool
	// Backend, when set, is a backend the run uses instead of starting
	// its own: several runs of one process (the matrix) then cost one
	// backend container. It is used where it can be reached as the run's
	// balancers would reach their own (both on the engine's default
	// bridge, reached directly) and serves the same products; otherwise
	// the run starts its own, as without it.
	Backend *SharedBackend
	// Warm keeps the backend and the shared balancers running when the run
	// ends, and first looks for those an earlier run kept: for a
	// developer's repeated local runs, never for CI (see warm.go). Where
	// the run cannot keep them (its own network, published ports) or
	// another run uses them, it starts its own, as without Warm.
	Warm bool
	// BackendContainer runs the backend in a container even where this
	// program could serve it itself on the engine's default bridge
	// (localbackend.go).
	BackendContainer bool
	// CoHost, when set, is a container the runs of this process share:
	// the run's shared balancer starts in it as a process, not in a
	// container of its own (cohost.go), where the run is on the engine's
	// default bridge, reached directly, uses the implementation's own
	// image and keeps nothing (not Warm).
	CoHost *CoHost
	// backendOnly starts no balancer (StartSharedBackend).
	backendOnly bool
}

// SharedBackend is a backend that runs of one process share: their
// requests are told apart by their ids, their OCSP answers by their CAs'
// keys, which are each run's own.
type SharedBackend struct {
	ready chan struct{} // closed once started, or not
	env   *Environment  // nil where runs could not share one
	err   error
}

// StartSharedBackend starts a backend for the runs of this process that
// are given it (Options.Backend); opts is as for Start (the implementation
// decides the image a dynamically linked program runs on). Where runs
// could not share it (this machine does not reach the engine's default
// bridge, so each run has a network of its own) it starts nothing and
// answers nil, which runs take as no shared backend. Close removes it.
func StartSharedBackend(ctx context.Context, opts Options) (*SharedBackend, error) {
	return BeginSharedBackend(ctx, opts).Wait()
}

// BeginSharedBackend is StartSharedBackend in the background: a run given
// it waits for it only once its own balancer is starting, so the first
// runs of a matrix no longer wait for a container before they start
// theirs. A backend that did not start is no backend to share: each run
// then starts its own (Wait says why).
func BeginSharedBackend(ctx context.Context, opts Options) *SharedBackend {
	b := &SharedBackend{ready: make(chan struct{})}
	opts.backendOnly, opts.Backend = true, nil
	go func() {
		defer close(b.ready)
		env, err := Start(ctx, opts)
		switch {
		case err != nil:
			b.err = err
		case !env.direct || env.network != nil || env.backendIP == "":
			b.err = env.Close(ctx)
		default:
			b.env = env
		}
	}()
	return b
}

// Wait waits for the backend's start: nil, and no error, where runs could
// not share one.
func (b *SharedBackend) Wait() (*SharedBackend, error) {
	<-b.ready
	if b.err != nil || b.env == nil {
		return nil, b.err
	}
	return b, nil
}

// Close removes the shared backend (nothing for a nil one), once its
// start has ended.
func (b *SharedBackend) Close(ctx context.Context) error {
	if b == nil {
		return nil
	}
	<-b.ready
	if b.env == nil {
		return nil
	}
	return b.env.Close(ctx)
}

// usable says whether a run with these options, on this network, can use
// the shared backend: on the default bridge, reached directly, as it is,
// and serving the same products. It waits for the backend's start.
func (b *SharedBackend) usable(e *Environment) bool {
	if b == nil {
		return false
	}
	<-b.ready
	return b.env != nil && e.direct && e.network == nil && slices.Equal(b.env.opts.Products, e.opts.Products) &&
		(b.env.local == nil || e.localBackendFits()) // one this program serves: where the run can ask a balancer of its own
}

// Environment is one run's network, backend, server PKI and the load
// balancers started so far, one per distinct configuration.
type Environment struct {
	RunID    string
	opts     Options
	docker   *testcontainers.DockerClient
	network  *testcontainers.DockerNetwork
	backend  *testcontainers.DockerContainer
	backURL  string
	ServerCA *pki.CA
	roots    *x509.CertPool // ServerCA as a pool, for the readiness polls
	server   *pki.Identity
	srvChain []byte
	srvKey   []byte

	// direct: this machine reaches the containers at their addresses on
	// the run's network, so no port is published.
	direct bool
	// netName is the network the run's containers are on: the run's own
	// (network), or the engine's default bridge where nothing needs
	// publishing; there the balancers reach the backend at backendIP.
	netName   string
	backendIP string
	// backendPort is the backend's port as the balancers reach it: its
	// container's, or the one this program serves it on.
	backendPort string
	// gateway and subnet are the default bridge's, where the run is on it
	// and the gateway is an address of this machine's: this program can
	// serve the backend there (localbackend.go).
	gateway netip.Addr
	subnet  netip.Prefix
	// local is the backend this run serves itself; nil when it runs in a
	// container or is the process's shared one.
	local *localBackend
	// backendSettled closes once the backend the balancers are pointed at
	// is the one the run keeps; backendErr says why there is none.
	backendSettled chan struct{}
	backendErr     error
	backendWhere   string // contract.BackendHere or BackendContainer

	mu           sync.Mutex
	lbs          map[string]*served
	lbContainers []*testcontainers.DockerContainer // one per configuration
	slotHosts    []*slotHost                       // shared balancers
	// slotsSetAside counts the slots of every shared balancer of the run,
	// removed ones included: slot numbers and ports are never reused.
	slotsSetAside int
	started       atomic.Int64
	reused        atomic.Int64 // kept containers found (Options.Warm)
	// alive ends when Close begins: work that runs for every caller (a
	// shared reload) stops with the run, not with one caller.
	alive     context.Context
	endAlive  context.CancelFunc
	closeOnce sync.Once
	inflight  sync.WaitGroup // containers and networks being created
	closeErr  error

	// warmBackend and warmHosts hold the kept backend's and balancers'
	// units while the run uses them (Options.Warm); nil otherwise.
	warmBackend, warmHosts *warmUnit
	warmParts              int // kept balancers named so far ("lb0", "lb1" …)
}

// served is a configuration's balancer, once started (ready closed), by
// configuration key: a slot of a shared balancer or a container of its own.
type served struct {
	ready chan struct{}
	lb    *LoadBalancer
	err   error
}

// creating marks a container or network being created until the returned
// function is called. Creation runs to its end even when the run is
// interrupted (the engine would finish a create whose client gave up, and
// the container would appear after the run's last sweep); Close waits for
// it, then removes what it made.
func (e *Environment) creating() (done func()) {
	e.inflight.Add(1)
	var once sync.Once
	return func() { once.Do(e.inflight.Done) }
}

func (o Options) withDefaults() Options {
	if o.Image == "" && o.Implementation != nil {
		o.Image = o.Implementation.Image()
	}
	if o.Timeouts == (Timeouts{}) {
		o.Timeouts = DefaultTimeouts()
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

func newRunID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Start sweeps what dead runs left, makes sure the images exist, and starts
// the run's network and backend; a balancer that serves configurations by
// reloads starts meanwhile. The independent parts run at once. Close must
// be called, also on failure of anything after Start; Start itself cleans
// up when it fails.
func Start(ctx context.Context, opts Options) (_ *Environment, err error) {
	if opts.Implementation == nil {
		return nil, errors.New("harness.Start: no implementation given (lb/all.Default() is the reference)")
	}
	opts = opts.withDefaults()
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	e := &Environment{RunID: newRunID(), opts: opts, docker: cli, lbs: map[string]*served{}, backendSettled: make(chan struct{})}
	e.alive, e.endAlive = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close(context.WithoutCancel(ctx)))
		}
	}()
	var backendRef string
	if err := parallel(
		func() error {
			if rep, err := sweep(ctx, cli, "", WarmIdle); err != nil {
				opts.Logf("cleanup of earlier runs: %v", err)
			} else if n := len(rep.Containers) + len(rep.Networks); n > 0 {
				opts.Logf("removed %d container(s) and %d network(s) left by earlier runs", len(rep.Containers), len(rep.Networks))
			}
			return nil
		},
		e.makeServerPKI,
		func() error {
			if opts.backendOnly {
				return nil
			}
			built, err := ensureImage(ctx, cli, opts.Image, opts.Implementation, opts.Logf)
			if built {
				opts.Logf("built %s", opts.Image)
			}
			return err
		},
		func() (err error) {
			if err := e.chooseNetwork(ctx); err != nil {
				return err
			}
			if e.localBackendFits() {
				return nil // its image only if the balancers cannot reach this program
			}
			var built bool
			backendRef, built, err = ensureBackendImage(ctx, cli, opts.Implementation)
			if built {
				opts.Logf("built %s", backendRef)
			}
			return err
		},
	); err != nil {
		return nil, err
	}
	if opts.Warm {
		if err := e.takeWarm(ctx, backendRef); err != nil {
			return nil, err
		}
	}
	var first *slotHost // asked whether it reaches a backend this program serves
	if host, ok := hostOf(opts.Implementation); ok && !opts.ContainerPerConfig && !opts.backendOnly {
		e.mu.Lock()
		first = e.startSlotHost(ctx, host)
		e.mu.Unlock()
	}
	if b := opts.Backend; b.usable(e) {
		e.backURL, e.backendIP, e.backendPort, e.backendWhere = b.env.backURL, b.env.backendIP, b.env.backendPort, b.env.backendWhere
		if l := b.env.local; l != nil {
			e.checkLocalBackend(first, l.addr, backendRef)
		} else {
			e.settleBackend(nil)
		}
		return e, nil
	}
	if e.localBackendFits() {
		l, err := serveLocalBackend(e.gateway, e.subnet, opts.Products)
		if err == nil {
			e.local = l
			e.useLocalBackend(l)
			e.checkLocalBackend(first, l.addr, backendRef)
			return e, nil
		}
		opts.Logf("%v: the backend runs in a container", err)
	}
	err = e.backendContainer(ctx, backendRef)
	e.settleBackend(err)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// readyLog waits for a line in a container's log, looking every 10 ms:
// testcontainers' 100 ms made every balancer start about 50 ms late, for
// two engine calls (state and log) more per 10 ms of a start.
func readyLog(line string) *wait.LogStrategy {
	return wait.ForLog(line).WithPollInterval(10 * time.Millisecond)
}

// parallel runs every step at once and reports every failure.
func parallel(steps ...func() error) error {
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, step := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = step()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *Environment) labels() map[string]string {
	return map[string]string{LabelManaged: "true", LabelRun: e.RunID, LabelOwner: ownerID()}
}

func (e *Environment) makeServerPKI() error {
	ca, err := pki.NewRootCA("mtlsconform Server CA " + e.RunID)
	if err != nil {
		return err
	}
	srv, err := ca.IssueServer("mtlsconform reference load balancer", []string{lb.ServerName, lb.PublicHost, "127.0.0.1", "::1"})
	if err != nil {
		return err
	}
	key, err := srv.KeyPEM()
	if err != nil {
		return err
	}
	e.ServerCA, e.server, e.srvChain, e.srvKey = ca, srv, srv.ChainPEM(), key
	e.roots = e.ServerRoots()
	return nil
}

// fileMode is the mode of a configuration file the harness writes: keys
// are their owner's alone.
func fileMode(name string) os.FileMode {
	if strings.HasSuffix(name, ".key") {
		return 0o600
	}
	return 0o644
}

var loopbackAddr = netip.MustParseAddr("127.0.0.1")

// loopbackOnly publishes a container port on 127.0.0.1 alone: nothing of the
// harness is reachable from outside the machine, and the port is one
// address (Docker 20.10 may give IPv4 and IPv6 different host ports).
func loopbackOnly(port string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		p, err := mobynet.ParsePort(port)
		if err != nil {
			return
		}
		if hc.PortBindings == nil {
			hc.PortBindings = mobynet.PortMap{}
		}
		hc.PortBindings[p] = []mobynet.PortBinding{{HostIP: loopbackAddr, HostPort: "0"}}
	})
}

func (e *Environment) hostURL(ctx context.Context, c *testcontainers.DockerContainer, port, scheme string) (string, error) {
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		return "", fmt.Errorf("find host port of %s: %w", port, err)
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, p.Num()), nil
}

func (e *Environment) startBackend(ctx context.Context, ref string) error {
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithLabels(e.labels()),
		e.onNetwork([]string{lb.BackendAlias}),
	}
	if e.opts.Products != nil {
		opts = append(opts, testcontainers.WithEnv(map[string]string{"PRODUCTAPI_PRODUCTS": string(productapi.ProductsJSON(e.opts.Products))}))
	}
	if !e.direct {
		opts = append(opts, testcontainers.WithExposedPorts(lb.BackendPort), loopbackOnly(lb.BackendPort))
	}
	kept := false
	if u := e.warmBackend; u != nil {
		id, err := warmContainer(ctx, e.docker, u.name("backend"))
		if err != nil {
			return err
		}
		kept = id != ""
		opts[0] = testcontainers.WithLabels(u.labels())
		opts = append(opts, testcontainers.WithReuseByName(u.name("backend")))
	}
	done := e.creating()
	c, err := testcontainers.Run(context.WithoutCancel(ctx), ref, opts...)
	if c != nil {
		e.backend = c
		if kept {
			e.reused.Add(1)
		} else {
			e.started.Add(1)
		}
	}
	done()
	if err == nil {
		err = ctx.Err() // interrupted while it started: Close removes it
	}
	if err == nil {
		e.backURL, err = e.containerURL(ctx, c, lb.BackendPort, "http")
	}
	if err == nil && e.network == nil {
		e.backendIP, err = e.networkIP(ctx, c)
	}
	if err == nil {
		e.backendPort, e.backendWhere = backendContainerPort, contract.BackendContainer
		err = e.waitHealthy(ctx, e.backURL+productapi.HealthPath)
	}
	if err != nil {
		if e.warmBackend != nil {
			err = fmt.Errorf("%w (a backend kept by --warm: mtlsconform sweep removes it once no run uses it)", err)
		}
		return fmt.Errorf("start the product API backend (%s): %w%s", ref, err, containerLogs(ctx, c))
	}
	return nil
}

// LoadBalancer returns a running load balancer in the given configuration,
// starting one only for a configuration not seen before in this run.
// Concurrent callers asking for the same configuration share one start.
func (e *Environment) LoadBalancer(ctx context.Context, cfg lb.Config) (*LoadBalancer, error) {
	lb, _, err := e.Acquire(ctx, cfg)
	return lb, err
}

// Acquire is LoadBalancer that also says whether this call started the
// container (the first caller for a configuration pays for it).
func (e *Environment) Acquire(ctx context.Context, cfg lb.Config) (*LoadBalancer, bool, error) {
	r, err := e.opts.Implementation.Render(cfg, lb.ServerFiles{Chain: e.srvChain, Key: e.srvKey})
	if err != nil {
		return nil, false, err
	}
	key := r.Key
	if cfg.Instance != "" {
		key += "/" + cfg.Instance // equal configurations, balancers of their own
	}
	e.mu.Lock()
	entry, ok := e.lbs[key]
	if !ok {
		entry = &served{ready: make(chan struct{})}
		e.lbs[key] = entry
	}
	e.mu.Unlock()
	if ok {
		select {
		case <-entry.ready:
			return entry.lb, false, entry.err
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	impl := e.opts.Implementation
	if m, ok := impl.(lb.Multiplexed); ok && !e.opts.ContainerPerConfig && cfg.Instance != "" {
		entry.lb, entry.err = e.ownSlot(ctx, m, cfg.WithDefaults(), r)
	} else if ok && !e.opts.ContainerPerConfig {
		entry.lb, entry.err = e.slot(ctx, m, cfg.WithDefaults(), r)
	} else if p, ok := impl.(lb.Processes); ok && !e.opts.ContainerPerConfig {
		entry.lb, entry.err = e.processSlot(ctx, p, cfg.WithDefaults(), r)
	} else {
		start := []testcontainers.ContainerCustomizer{testcontainers.WithCmd(impl.Command()...)}
		if line := impl.ReadyLog(); line != "" {
			start = append(start, testcontainers.WithWaitStrategyAndDeadline(e.opts.Timeouts.ContainerReady, readyLog(line)))
		}
		// The backend by its address, as in a slot: a balancer that reads
		// /etc/hosts late or not at all (Traffic Server) has it at once.
		files := maps.Clone(r.Files)
		if entry.err = e.pointAtBackend(ctx, files); entry.err == nil {
			r.Files = files
			var bals []*LoadBalancer
			bals, entry.err = e.startLB(ctx, cfg.WithDefaults(), r, e.opts.Image, []listener{{tls: lb.Port, plain: lb.PlainPort}}, start...)
			if entry.err == nil {
				entry.lb = bals[0]
			}
		}
	}
	close(entry.ready)
	return entry.lb, true, entry.err
}

// CustomLB is a load balancer configured by hand rather than rendered from
// lb.Config: tests use it to stand up balancers the reference configuration
// had no part in.
type CustomLB struct {
	// Balancer is the implementation whose image it runs (built when
	// missing); its configuration is Files, not its own rendering.
	Balancer lb.Implementation
	// Cmd starts the balancer in the foreground, reading its configuration
	// from under /etc/mtlsconform.
	Cmd []string
	// Files maps names under /etc/mtlsconform to content.
	Files map[string][]byte
	// Ports, when set, are the TLS ports of several balancers that Cmd
	// starts in the one container, each with its plain port at
	// lb.PlainPortOffset above: a container costs the engine about a
	// second of CPU, a process next to nothing. Unset: 8443 and 8088.
	Ports []int
}

// CustomLoadBalancer starts a hand-configured balancer on the run's
// network. The backend is named productapi:8080 in its Files (that text
// is rewritten to where the backend is: mtlsconform may serve it itself,
// on another address and port; a host and port written apart, or in Cmd,
// are not) and the port to listen on is 8443; it is ready when a TLS
// handshake with the run's server certificate succeeds.
func (e *Environment) CustomLoadBalancer(ctx context.Context, c CustomLB) (*LoadBalancer, error) {
	if len(c.Ports) > 0 {
		return nil, errors.New("a custom load balancer with ports of its own is started by CustomLoadBalancers")
	}
	bals, err := e.CustomLoadBalancers(ctx, c)
	if err != nil {
		return nil, err
	}
	return bals[0], nil
}

// CustomLoadBalancers starts hand-configured balancers that share a
// container, one on each of c.Ports (or one on 8443 when none are given),
// and answers one LoadBalancer per port, in order, once each serves TLS.
func (e *Environment) CustomLoadBalancers(ctx context.Context, c CustomLB) ([]*LoadBalancer, error) {
	if c.Balancer == nil || len(c.Cmd) == 0 || len(c.Files) == 0 {
		return nil, errors.New("a custom load balancer needs an implementation (for its image), a command and its files")
	}
	ports := []listener{{tls: lb.Port, plain: lb.PlainPort}}
	if len(c.Ports) > 0 {
		ports = nil
		for _, p := range c.Ports {
			if p < 1 || p+lb.PlainPortOffset > 65535 {
				return nil, fmt.Errorf("custom load balancer port %d: want 1 to %d (its plain port is %d above)", p, 65535-lb.PlainPortOffset, lb.PlainPortOffset)
			}
			ports = append(ports, listener{tls: strconv.Itoa(p) + "/tcp", plain: strconv.Itoa(p+lb.PlainPortOffset) + "/tcp"})
		}
	}
	if built, err := ensureImage(ctx, e.docker, c.Balancer.Image(), c.Balancer, e.opts.Logf); err != nil {
		return nil, err
	} else if built {
		e.opts.Logf("built %s", c.Balancer.Image())
	}
	r := lb.Rendered{Files: c.Files, Key: "custom-" + lb.HashFiles(c.Files)}
	// Files named productapi:8080; the backend may be elsewhere.
	files := maps.Clone(c.Files)
	if err := e.pointAtBackend(ctx, files); err != nil {
		return nil, err
	}
	r.Files = files
	return e.startLB(ctx, lb.Config{Mode: customMode}, r, c.Balancer.Image(), ports, testcontainers.WithCmd(c.Cmd...))
}

// customMode is the mode of a hand-configured balancer (CustomLB).
const customMode = "custom"

// listener is a balancer's TLS port and its plain-HTTP port ("8443/tcp").
type listener struct{ tls, plain string }

// ServerCredential is the run's server certificate chain and key (PEM),
// for custom load balancers.
func (e *Environment) ServerCredential() (chain, key []byte) { return e.srvChain, e.srvKey }

func (e *Environment) startLB(ctx context.Context, cfg lb.Config, r lb.Rendered, image string, ports []listener, start ...testcontainers.ContainerCustomizer) ([]*LoadBalancer, error) {
	opts := []testcontainers.ContainerCustomizer{}
	if !e.direct {
		for _, p := range ports {
			opts = append(opts, testcontainers.WithExposedPorts(p.tls, p.plain), loopbackOnly(p.tls), loopbackOnly(p.plain))
		}
	}
	done := e.creating()
	c, err := testcontainers.Run(context.WithoutCancel(ctx), image, append(append(opts,
		testcontainers.WithLabels(e.labels()),
		testcontainers.WithLabels(map[string]string{"org.mtlsconform.lbconfig": r.Key}),
		e.onNetwork(nil),
		e.backendHost(),
		e.withConfFiles(r.Files),
	), start...)...)
	if c != nil {
		e.started.Add(1)
		e.mu.Lock()
		e.lbContainers = append(e.lbContainers, c)
		e.mu.Unlock()
	}
	done()
	if err == nil {
		err = ctx.Err() // interrupted while it started: Close removes it
	}
	if err != nil {
		return nil, fmt.Errorf("start the load balancer (%s, %s mode): %w%s", image, cfg.Mode, err, containerLogs(ctx, c))
	}
	bals := make([]*LoadBalancer, len(ports))
	for i, p := range ports {
		u, err := e.containerURL(ctx, c, p.tls, "https")
		if err != nil {
			return nil, err
		}
		plain, err := e.containerURL(ctx, c, p.plain, "http")
		if err != nil {
			return nil, err
		}
		bals[i] = &LoadBalancer{URL: u, PlainURL: plain, Config: cfg, ConfigKey: r.Key, Rendered: r.Config, container: c}
	}
	waits := make([]func() error, len(bals))
	for i, bal := range bals {
		waits[i] = func() error {
			if err := e.waitServing(ctx, bal, c); err != nil {
				return fmt.Errorf("load balancer %s never served TLS: %w%s", bal.URL, err, containerLogs(ctx, c))
			}
			if cfg.Mode == customMode {
				return nil // a hand-written configuration may have no plain listener
			}
			// Its plain-HTTP listener may open after the TLS one (startOwn).
			wait, cancel := context.WithTimeout(ctx, e.opts.Timeouts.ContainerReady)
			defer cancel()
			if err := e.waitListening(wait, bal.PlainURL); err != nil {
				return fmt.Errorf("load balancer %s served TLS but never opened its plain-HTTP port %s: %w%s", bal.URL, bal.PlainURL, err, containerLogs(ctx, c))
			}
			return nil
		}
	}
	if err := parallel(waits...); err != nil {
		return nil, err
	}
	return bals, nil
}

func containerLogs(ctx context.Context, c *testcontainers.DockerContainer) string {
	if c == nil {
		return ""
	}
	rc, err := c.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	// Its last 4 KiB: a balancer that ran a while (the shared one, which
	// logs every reload) says why it stopped at the end.
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	if len(b) == 0 {
		return ""
	}
	if len(b) > 4096 {
		b = append([]byte("…"), b[len(b)-4096:]...)
	}
	return "\ncontainer log:\n" + string(b)
}

// waitServing polls until a TLS handshake with the load balancer succeeds
// and presents the run's server certificate, or the deadline passes. A
// container that exited (a configuration it refused) never serves: that
// is said at once rather than at the deadline.
func (e *Environment) waitServing(ctx context.Context, bal *LoadBalancer, c *testcontainers.DockerContainer) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeouts.ContainerReady)
	defer cancel()
	return poll(ctx, func() (bool, error) {
		err := e.handshake(ctx, bal.URL)
		if err == nil {
			return true, nil
		}
		if st, serr := c.State(ctx); serr == nil && !st.Running {
			return false, giveUp{fmt.Errorf("the container exited (status %d) before serving TLS (last attempt: %v)", st.ExitCode, err)}
		}
		return false, err
	})
}

// waitTLS polls until a TLS handshake with url succeeds and presents the
// run's server certificate, or ctx ends.
func (e *Environment) waitTLS(ctx context.Context, url string) error {
	return poll(ctx, func() (bool, error) {
		err := e.handshake(ctx, url)
		return err == nil, err
	})
}

// waitListening polls until a TCP connection to url's host and port
// succeeds (a listener without TLS, whose answer the scenarios judge).
func (e *Environment) waitListening(ctx context.Context, url string) error {
	host := url[strings.Index(url, "://")+3:]
	d := net.Dialer{Timeout: time.Second}
	return poll(ctx, func() (bool, error) {
		conn, err := d.DialContext(ctx, "tcp", host)
		if err == nil {
			conn.Close()
		}
		return err == nil, err
	})
}

func (e *Environment) handshake(ctx context.Context, url string) error {
	d := tls.Dialer{Config: &tls.Config{RootCAs: e.roots, ServerName: lb.ServerName}, NetDialer: &net.Dialer{Timeout: time.Second}}
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(url, "https://"))
	if err == nil {
		conn.Close()
	}
	return err
}

// waitHealthy polls until url answers 200, within the readiness timeout.
func (e *Environment) waitHealthy(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeouts.ContainerReady)
	defer cancel()
	return poll(ctx, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return true, nil
	})
}

// giveUp is an error after which polling stops: what it waited for will
// never come.
type giveUp struct{ error }

// poll calls try every 10 ms until it reports done, returns a giveUp, or
// ctx ends; the error says what the last attempt met.
func poll(ctx context.Context, try func() (bool, error)) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := try()
		if ok {
			return nil
		}
		last = err
		if g, ok := err.(giveUp); ok {
			return g.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// ServerRoots is the pool a partner uses to verify the load balancer.
func (e *Environment) ServerRoots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(e.ServerCA.Cert)
	return p
}

// Caller returns a client set up to verify this run's load balancers.
func (e *Environment) Caller() *partner.Caller {
	_, shared := e.opts.Implementation.(lb.Multiplexed)
	return &partner.Caller{ServerRoots: e.ServerRoots(), ServerName: lb.ServerName, Timeout: e.opts.Timeouts.Request,
		Reloads: shared && !e.opts.ContainerPerConfig}
}

// BackendRequests asks the backend what it received under a request id.
func (e *Environment) BackendRequests(ctx context.Context, id string) ([]productapi.Echo, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeouts.Request)
	defer cancel()
	if err := e.settled(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.backURL+productapi.RequestsPath+"?id="+url.QueryEscape(id), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the backend what it received: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ask the backend what it received: status %d", resp.StatusCode)
	}
	var out []productapi.Echo
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("read the backend's request log: %w", err)
	}
	return out, nil
}

// OCSPAdmin tells the backend's OCSP responder what to answer (C24).
// It waits for the run's backend to be settled, and says why there is
// none.
func (e *Environment) OCSPAdmin(ctx context.Context) (productapi.OCSPAdmin, error) {
	if err := e.settled(ctx); err != nil {
		return productapi.OCSPAdmin{}, err
	}
	return productapi.OCSPAdmin{Base: e.backURL, Client: &http.Client{Timeout: e.opts.Timeouts.Request}}, nil
}

// OCSPResponder is the backend's OCSP responder as a balancer names it.
const OCSPResponder = "http://" + lb.Backend + productapi.OCSPPath

// Implementation is the reference balancer this environment runs.
func (e *Environment) Implementation() lb.Implementation { return e.opts.Implementation }

// Stats say how many containers this run started.
func (e *Environment) Stats() contract.Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := contract.Stats{ContainersStarted: int(e.started.Load()), ContainersKept: int(e.reused.Load()), LoadBalancers: len(e.lbs)}
	for _, h := range e.slotHosts {
		select {
		case <-h.ready: // its start wrote h.root
			st.Shared = st.Shared || h.err == nil && h.root != ""
		default:
		}
	}
	select {
	case <-e.backendSettled:
		if e.backendErr == nil {
			st.Backend = e.backendWhere
		}
	default:
	}
	return st
}

// ReleaseLoadBalancers removes every load balancer started so far, shared
// ones included, and forgets every configuration, keeping the network and
// the backend: for runs that go through many configurations one after
// another (the mutation self-test). A shared balancer is not kept for the
// next run: every slot it holds makes each of its reloads slower (Apache
// httpd re-initialises every virtual host), and a new one costs one
// container start.
func (e *Environment) ReleaseLoadBalancers(ctx context.Context) error {
	e.inflight.Wait() // a shared balancer still starting is removed too
	e.mu.Lock()
	cs, hosts := e.lbContainers, e.slotHosts
	e.lbContainers, e.slotHosts, e.lbs = nil, nil, map[string]*served{}
	e.mu.Unlock()
	err := terminateAll(ctx, append(cs, hostContainers(hosts)...))
	stopCoHostedAll(ctx, hosts)
	removeSlotDirs(hosts)
	return err
}

func hostContainers(hosts []*slotHost) []*testcontainers.DockerContainer {
	var cs []*testcontainers.DockerContainer
	for _, h := range hosts {
		if h.c != nil && h.root == "" { // a co-host's is the process's, not the run's
			cs = append(cs, h.c)
		}
	}
	return cs
}

// removeSlotDirs removes the shared balancers' slot folders, once their
// containers are gone: nothing reads them any more.
func removeSlotDirs(hosts []*slotHost) {
	for _, h := range hosts {
		if h.removeDir != nil {
			h.removeDir()
		}
	}
}

func terminateAll(ctx context.Context, cs []*testcontainers.DockerContainer) error {
	steps := make([]func() error, len(cs))
	for i, c := range cs {
		steps[i] = func() error {
			if err := c.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
				return fmt.Errorf("remove container %.12s: %w", c.GetContainerID(), err)
			}
			return nil
		}
	}
	return parallel(steps...)
}

// Close removes every container and the network of the run, reporting every
// failure rather than the first. It is safe to call more than once.
func (e *Environment) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		if e.endAlive != nil {
			e.endAlive()
		}
		// A container or network still being created would appear after the
		// sweep below: creation is not cancelled half-way, so wait for it.
		e.inflight.Wait()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.Timeouts.Cleanup)
		defer cancel()
		var errs []error
		// Kept balancers that served well stay for the next run, with
		// their folders; the others go.
		var gone, kept []*slotHost
		e.mu.Lock()
		cs := append([]*testcontainers.DockerContainer{}, e.lbContainers...)
		for _, h := range e.slotHosts {
			if h.keep() {
				kept = append(kept, h)
			} else {
				gone = append(gone, h)
			}
		}
		e.mu.Unlock()
		gone = append(gone, e.park(ctx, kept)...)
		cs = append(cs, hostContainers(gone)...)
		// A kept backend is never removed by a run: others may use it (its
		// lock is shared); one that does not answer is the sweep's.
		if e.backend != nil && e.warmBackend == nil {
			cs = append(cs, e.backend)
		}
		if err := parallel(func() error { return terminateAll(ctx, cs) }, func() error { stopCoHostedAll(ctx, gone); return nil }); err != nil {
			errs = append(errs, err)
		}
		// The network, and any container still being created when Close
		// came (an interrupt mid-start), are found by the run's label.
		if e.docker != nil {
			if _, err := sweep(ctx, e.docker, e.RunID, 0); err != nil {
				errs = append(errs, err)
			}
			e.docker.Close()
		}
		if e.local != nil {
			e.local.stop()
		}
		removeSlotDirs(gone)
		e.warmHosts.release()
		e.warmBackend.release()
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// LoadBalancer is a running reference load balancer.
type LoadBalancer struct {
	URL       string // https://ADDRESS:PORT: the container's own address, or 127.0.0.1 where ports are published
	PlainURL  string // http://ADDRESS:PORT of its plain-HTTP listener (C19)
	Config    lb.Config
	ConfigKey string
	Rendered  string // the main configuration file as rendered
	container *testcontainers.DockerContainer
	// host and slot say where a configuration of a shared balancer lives.
	host *slotHost
	slot string
	// separate reloads a configuration running as a process of its own
	// (lb.Separate); nil otherwise.
	separate []string
}
