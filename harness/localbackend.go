package harness

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	mobynet "github.com/moby/moby/api/types/network"

	"mtlsconform/contract"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/lb"
)

// The backend behind the balancers is, where it can be, served by this
// program itself on the engine's default bridge, at the bridge's gateway
// address (a local engine on Linux: one of this machine's addresses): a
// backend container cost a start and a removal per run, about 0.2 s of
// wall and 0.25 s of CPU on two cores when alone and more beside the
// balancer's own start. Where the balancers' containers cannot reach this
// program (a firewall on this machine that drops what comes from the
// bridge, say), the backend runs in a container as before: the run's first
// shared balancer is asked, through its control pipe, to open a connection
// to it before any configuration names it.

// localBackend is the product API this program serves for a run.
type localBackend struct {
	addr netip.AddrPort
	stop func()
}

// serveLocalBackend serves the product API on the gateway's address, on a
// port of the system's choosing, to the bridge's subnet and this machine
// alone (a packet from elsewhere addressed to the gateway would reach it
// too).
func serveLocalBackend(gateway netip.Addr, subnet netip.Prefix, products []productapi.Product) (*localBackend, error) {
	l, err := net.Listen("tcp", netip.AddrPortFrom(gateway, 0).String())
	if err != nil {
		return nil, fmt.Errorf("serve the backend on %s: %w", gateway, err)
	}
	if products == nil {
		products = productapi.Products()
	}
	addr := l.Addr().(*net.TCPAddr).AddrPort()
	stop := productapi.Background(&subnetOnly{Listener: l, subnet: subnet, local: localAddrs()}, productapi.NewWithProducts(100000, products))
	return &localBackend{addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()), stop: stop}, nil
}

// subnetOnly accepts connections from one subnet and from this machine
// (whose connections to the gateway may come from any of its addresses),
// and closes the others. local is this machine's addresses as they were
// when it began (the harness's every read of the backend comes from one of
// them); they are read again only for an address not among them.
type subnetOnly struct {
	net.Listener
	subnet netip.Prefix
	local  []netip.Addr
}

func (l *subnetOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			from := a.AddrPort().Addr().Unmap()
			if l.subnet.Contains(from) || from.IsLoopback() || slices.Contains(l.local, from) {
				return c, nil
			}
			if now := localAddrs(); slices.Contains(now, from) {
				l.local = now // Accept is called by one goroutine at a time
				return c, nil
			}
		}
		c.Close()
	}
}

// bridgeGateway is the default bridge's gateway and subnet where the
// gateway is an address of this machine's: the address of this machine's
// in an IPv4 subnet of the bridge (the engine's default bridge names no
// gateway in its address plan; its interface holds it).
func bridgeGateway(cfgs []mobynet.IPAMConfig) (netip.Addr, netip.Prefix, bool) {
	addrs := localAddrs()
	for _, c := range cfgs {
		if !c.Subnet.Addr().Is4() {
			continue
		}
		for _, a := range addrs {
			if c.Subnet.Contains(a) && (!c.Gateway.IsValid() || c.Gateway.Unmap() == a) {
				return a, c.Subnet, true
			}
		}
	}
	return netip.Addr{}, netip.Prefix{}, false
}

// localBackendFits says whether this run serves its backend itself: on
// the default bridge with a local gateway, with a shared balancer to ask
// whether it reaches it (or starting none: a backend the process shares,
// which each run asks of its own balancer), and not told otherwise.
func (e *Environment) localBackendFits() bool {
	if !e.gateway.IsValid() || e.opts.BackendContainer || e.opts.ContainerPerConfig {
		return false
	}
	if _, no := unreached.Load(e.gateway); no {
		return false // an earlier run of this process was told no
	}
	_, hosted := hostOf(e.opts.Implementation)
	return e.opts.backendOnly || hosted
}

// backendSettled is closed once the run's backend is what the run will use
// (for a backend of this program's: once a balancer reached it, or a
// container replaced it); backendErr says why there is none.
func (e *Environment) settleBackend(err error) {
	e.backendErr = err
	close(e.backendSettled)
}

// settled waits for the run's backend to be settled.
func (e *Environment) settled(ctx context.Context) error {
	select {
	case <-e.backendSettled:
		return e.backendErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// useLocalBackend points the run at a backend this program serves.
func (e *Environment) useLocalBackend(b *localBackend) {
	e.backURL = "http://" + b.addr.String()
	e.backendIP, e.backendPort = b.addr.Addr().String(), strconv.Itoa(int(b.addr.Port()))
	e.backendWhere = contract.BackendHere
}

// reached records the backends of this program that a balancer's container
// reached, by address: one answer holds for every container on the bridge.
// unreached records the gateways where one could not: the later runs of
// the process (the matrix's) start a backend container at once rather than
// each asking and waiting again.
var reached, unreached sync.Map

// checkLocalBackend settles, in the background, a run whose backend this
// program serves: the run's shared balancer, once it runs, opens a
// connection to it. Where it cannot, the backend starts in a container
// instead (ref: its image, when already made sure of), and the run uses
// that one. Close waits for it.
func (e *Environment) checkLocalBackend(h *slotHost, addr netip.AddrPort, ref string) {
	done := e.creating()
	go func() {
		defer done()
		e.reachOrReplace(e.alive, h, addr, ref)
	}()
}

func (e *Environment) reachOrReplace(ctx context.Context, h *slotHost, addr netip.AddrPort, ref string) {
	if _, ok := reached.Load(addr); ok || h == nil {
		e.settleBackend(nil)
		return
	}
	<-h.ready
	why := "its balancer did not start"
	if h.err == nil {
		// A balancer that did not start cannot be asked; the next one
		// would be set up against a backend nobody tried: a container.
		why = reachBackend(ctx, h, addr)
	}
	if why == "" {
		reached.Store(addr, true)
		e.settleBackend(nil)
		return
	}
	if ctx.Err() != nil {
		e.settleBackend(ctx.Err())
		return
	}
	if h.err == nil {
		unreached.Store(addr.Addr(), true)
		e.opts.Logf("the balancers' containers do not reach mtlsconform at %s (%s): the backend runs in a container instead, "+
			"for this run and the others of this process (about 2 s and a container start more per run). "+
			"Where a firewall on this machine drops what comes from the engine's bridge, allowing TCP from %s to %s makes runs faster; "+
			"--backend-container skips the question", addr, why, e.subnet, addr.Addr())
	}
	if err := e.backendContainer(ctx, ref); err != nil {
		e.settleBackend(fmt.Errorf("the balancers cannot reach the backend mtlsconform serves at %s (%s), and the backend's container did not start either: %w", addr, why, err))
		return
	}
	e.settleBackend(nil)
}

// reachBackend is reachBackendOnce; tests play a firewall with it.
var reachBackend = reachBackendOnce

// reachBackendOnce asks the balancer to open a connection to addr; it
// answers why it could not, or "".
func reachBackendOnce(ctx context.Context, h *slotHost, addr netip.AddrPort) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// bash's /dev/tcp; timeout: a firewall that drops rather than refuses.
	out, ran := run(ctx, h, []string{"timeout", "2", "bash", "-c",
		"exec 3<>/dev/tcp/" + addr.Addr().String() + "/" + strconv.Itoa(int(addr.Port()))})
	switch {
	case !ran:
		return "could not ask: " + out
	case strings.HasPrefix(out, "exit status 124:"):
		return "no connection within 2 s"
	case strings.HasPrefix(out, "exit status 126:"), strings.HasPrefix(out, "exit status 127:"):
		return "its image has no bash or timeout to try with (an image of your own?)"
	case out != "":
		first, _, _ := strings.Cut(out, "\n") // bash says it twice
		return strings.TrimSuffix(first, ":")
	}
	return ""
}

// backendContainer starts the run's backend in a container, in place of
// the one this program served.
func (e *Environment) backendContainer(ctx context.Context, ref string) error {
	if ref == "" {
		var built bool
		var err error
		if ref, built, err = ensureBackendImage(ctx, e.docker, e.opts.Implementation); err != nil {
			return err
		}
		if built {
			e.opts.Logf("built %s", ref)
		}
	}
	if e.local != nil {
		e.local.stop()
		e.local = nil
	}
	return e.startBackend(ctx, ref)
}

// backendContainerPort is the port of the backend in its container.
var backendContainerPort = lb.PortNumber(lb.BackendPort)
