package harness

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	mobynet "github.com/moby/moby/api/types/network"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
)

// fakeConn is a connection from an address, for subnetOnly.
type fakeConn struct {
	net.Conn
	from   netip.AddrPort
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.from) }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

// fakeListener hands out its connections in order, then fails.
type fakeListener struct {
	net.Listener
	conns []*fakeConn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	if len(l.conns) == 0 {
		return nil, net.ErrClosed
	}
	c := l.conns[0]
	l.conns = l.conns[1:]
	return c, nil
}

// The backend this program serves on the bridge's gateway takes
// connections from the bridge's subnet and from this machine, and closes
// any other: an address of this machine's is reached from elsewhere too.
func TestLocalBackendServesTheBridgeAndThisMachineOnly(t *testing.T) {
	from := func(s string) *fakeConn { return &fakeConn{from: netip.MustParseAddrPort(s)} }
	outside, container, loopback, mapped := from("203.0.113.9:4000"), from("172.17.0.5:4000"), from("127.0.0.1:4000"), from("[::ffff:172.17.0.6]:4000")
	l := &subnetOnly{Listener: &fakeListener{conns: []*fakeConn{outside, container, loopback, mapped}}, subnet: netip.MustParsePrefix("172.17.0.0/16")}
	var got []string
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		got = append(got, c.RemoteAddr().String())
	}
	want := "172.17.0.5:4000 127.0.0.1:4000 172.17.0.6:4000"
	if strings.Join(got, " ") != want {
		t.Errorf("accepted %v, want %s", got, want)
	}
	if !outside.closed || container.closed {
		t.Errorf("closed: outside %v (want true), container %v (want false)", outside.closed, container.closed)
	}
}

// The gateway is this machine's address in the bridge's IPv4 subnet,
// named in the address plan or not (the default bridge names none).
func TestBridgeGateway(t *testing.T) {
	for _, c := range []struct {
		name string
		cfgs []mobynet.IPAMConfig
		want string
	}{
		{"no gateway named", []mobynet.IPAMConfig{{Subnet: netip.MustParsePrefix("127.0.0.0/8")}}, "127.0.0.1"},
		{"the gateway named", []mobynet.IPAMConfig{{Subnet: netip.MustParsePrefix("127.0.0.0/8"), Gateway: netip.MustParseAddr("127.0.0.1")}}, "127.0.0.1"},
		{"a gateway not of this machine", []mobynet.IPAMConfig{{Subnet: netip.MustParsePrefix("127.0.0.0/8"), Gateway: netip.MustParseAddr("127.0.0.2")}}, ""},
		{"a subnet this machine is not in", []mobynet.IPAMConfig{{Subnet: netip.MustParsePrefix("198.51.100.0/24")}}, ""},
		{"IPv6 alone", []mobynet.IPAMConfig{{Subnet: netip.MustParsePrefix("::1/128")}}, ""},
	} {
		gw, _, ok := bridgeGateway(c.cfgs)
		got := ""
		if ok {
			got = gw.String()
		}
		if got != c.want {
			t.Errorf("%s: gateway %q, want %q", c.name, got, c.want)
		}
	}
}

// reachedThrough checks, through a trusted configuration, that the
// backend the balancer reaches is the one the harness reads: the request
// is in its record.
func reachedThrough(t *testing.T, env *Environment, root *pki.CA, leaf *pki.Identity) {
	t.Helper()
	res := servesTrusted(t, env, root, leaf, "a slot")
	seen, err := env.BackendRequests(context.Background(), res.RequestID)
	if err != nil || len(seen) != 1 {
		t.Fatalf("the backend's record of the request: %v, %d requests", err, len(seen))
	}
}

// Where the balancers reach this program, it is the backend: no container
// for it, and the balancer's requests reach it.
func TestBackendServedByThisProgram(t *testing.T) {
	env, root, leaf := mountLab(t)
	if !env.gateway.IsValid() {
		t.Skip("SKIPPED: the engine's default bridge has no address of this machine's")
	}
	reachedThrough(t, env, root, leaf)
	if env.local == nil || !strings.HasPrefix(env.backURL, "http://"+env.gateway.String()+":") {
		t.Errorf("the backend is at %s, not served by this program on %s", env.backURL, env.gateway)
	}
	if st := env.Stats(); st.ContainersStarted != 1 {
		t.Errorf("containers started = %d, want 1 (the balancer alone)", st.ContainersStarted)
	}
}

// Where the balancer cannot reach this program (a firewall, played here),
// the backend runs in a container and the run uses it.
func TestBackendInAContainerWhereTheBalancersCannotReachThisProgram(t *testing.T) {
	asked := 0
	reachBackend = func(context.Context, *slotHost, netip.AddrPort) string { asked++; return "no connection within 2 s" }
	defer func() {
		reachBackend = reachBackendOnce
		unreached.Clear() // the other tests' runs are asked again
	}()
	reached.Clear()
	env, root, leaf := mountLab(t)
	if !env.gateway.IsValid() {
		t.Skip("SKIPPED: the engine's default bridge has no address of this machine's")
	}
	reachedThrough(t, env, root, leaf)
	if asked != 1 {
		t.Errorf("the balancer was asked %d times whether it reaches this program, want once", asked)
	}
	if env.local != nil || env.backend == nil || env.backendPort != backendContainerPort {
		t.Errorf("the run's backend: served here %v, container %v, port %s; want a container's on %s", env.local != nil, env.backend != nil, env.backendPort, backendContainerPort)
	}
	if st := env.Stats(); st.ContainersStarted != 2 {
		t.Errorf("containers started = %d, want 2 (the balancer, the backend)", st.ContainersStarted)
	}
	// The next run of this process is not asked again: it starts its
	// backend container at once.
	next, root, leaf := mountLab(t)
	reachedThrough(t, next, root, leaf)
	if asked != 1 || next.local != nil || next.Stats().Backend != contract.BackendContainer {
		t.Errorf("the next run: asked %d times in all (want 1), served here %v, backend %q", asked, next.local != nil, next.Stats().Backend)
	}
}

// A run closed while its balancer is still being asked stops asking (the
// test would hang otherwise), and leaves no backend behind.
func TestCloseWhileTheBackendIsChecked(t *testing.T) {
	reachBackend = func(ctx context.Context, _ *slotHost, _ netip.AddrPort) string { <-ctx.Done(); return "closed" }
	defer func() { reachBackend = reachBackendOnce }()
	reached.Clear()
	env, _, _ := mountLab(t)
	if err := env.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if env.local != nil && env.local.stop != nil {
		if c, err := net.DialTimeout("tcp", env.local.addr.String(), time.Second); err == nil {
			c.Close()
			t.Errorf("the backend this program served still answers at %s after Close", env.local.addr)
		}
	}
}
