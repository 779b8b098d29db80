package harness

import (
	"bytes"
	"context"
	"fmt"
	"mtlsconform/lb"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
)

// chooseNetwork puts the run on the engine's default bridge where this
// machine reaches it directly and its containers may talk to each other:
// nothing is then published, and no network is made and removed (about
// 0.1 s and 0.2 s here). Elsewhere the run gets a network of its own, and
// its ports are published on 127.0.0.1.
func (e *Environment) chooseNetwork(ctx context.Context) error {
	if !e.opts.PublishPorts {
		res, err := e.docker.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
		if err == nil && res.Network.Driver == "bridge" && res.Network.Options["com.docker.network.bridge.enable_icc"] != "false" && reaches(res.Network.IPAM.Config) {
			e.netName, e.direct = res.Network.Name, true
			e.gateway, e.subnet, _ = bridgeGateway(res.Network.IPAM.Config)
			return nil
		}
	}
	done := e.creating()
	nw, err := network.New(context.WithoutCancel(ctx), network.WithLabels(e.labels()))
	if nw != nil {
		e.network, e.netName = nw, nw.Name
	}
	done()
	if err != nil {
		return fmt.Errorf("create the run's network: %w", err)
	}
	if !e.opts.PublishPorts {
		if res, err := e.docker.NetworkInspect(ctx, nw.ID, client.NetworkInspectOptions{}); err == nil {
			e.direct = reaches(res.Network.IPAM.Config)
		}
	}
	return nil
}

// reaches says whether this machine reaches containers on a network at
// their own addresses: its gateway, or an address in its subnet, is one of
// this machine's (a local engine on Linux, the bridge in this network
// namespace). A remote engine, Docker Desktop's virtual machine or a
// rootless engine answers no.
func reaches(cfgs []mobynet.IPAMConfig) bool {
	for _, local := range localAddrs() {
		for _, c := range cfgs {
			if c.Gateway.IsValid() && c.Gateway.Unmap() == local || c.Subnet.IsValid() && c.Subnet.Contains(local) {
				return true
			}
		}
	}
	return false
}

// localAddrs are this machine's addresses (none where they cannot be read).
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// onNetwork puts a container on the run's network, under aliases; on the
// default bridge, where containers join by default, it does nothing.
func (e *Environment) onNetwork(aliases []string) testcontainers.CustomizeRequestOption {
	if e.network == nil {
		return func(*testcontainers.GenericContainerRequest) error { return nil }
	}
	return network.WithNetwork(aliases, e.network)
}

// backendHost lets a balancer started after the backend find it by its
// name on the default bridge, which has no names (an /etc/hosts line).
func (e *Environment) backendHost() testcontainers.CustomizeRequestOption {
	if e.network != nil || e.backendIP == "" {
		return func(*testcontainers.GenericContainerRequest) error { return nil }
	}
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.ExtraHosts = append(hc.ExtraHosts, lb.BackendAlias+":"+e.backendIP)
	})
}

// pointAtBackend makes a configuration name the backend by its address on
// the default bridge, which has no names: a shared balancer started before
// the backend had one, a balancer's own container may read its /etc/hosts
// line late (Traffic Server: a second after it serves), and a backend this
// program serves has a port of its own. It waits for the run's backend to
// be settled.
func (e *Environment) pointAtBackend(ctx context.Context, files map[string][]byte) error {
	if err := e.settled(ctx); err != nil {
		return err
	}
	if e.network != nil || e.backendIP == "" {
		return nil
	}
	from, to := []byte(lb.Backend), []byte(net.JoinHostPort(e.backendIP, e.backendPort))
	for name, data := range files {
		if !strings.HasSuffix(name, ".pem") && !strings.HasSuffix(name, ".key") {
			files[name] = bytes.ReplaceAll(data, from, to)
		}
	}
	return nil
}

// networkIP is a container's address on the run's network.
func (e *Environment) networkIP(ctx context.Context, c *testcontainers.DockerContainer) (string, error) {
	info, err := c.Inspect(ctx)
	if err != nil {
		return "", fmt.Errorf("find the address of container %.12s: %w", c.GetContainerID(), err)
	}
	if ep, ok := info.NetworkSettings.Networks[e.netName]; ok && ep.IPAddress.IsValid() {
		return ep.IPAddress.String(), nil
	}
	return "", fmt.Errorf("container %.12s has no address on the network %s", c.GetContainerID(), e.netName)
}

// containerURL is where this machine reaches a container's port: its
// address on the run's network, or the port published on 127.0.0.1.
func (e *Environment) containerURL(ctx context.Context, c *testcontainers.DockerContainer, port, scheme string) (string, error) {
	if !e.direct {
		return e.hostURL(ctx, c, port, scheme)
	}
	ip, err := e.networkIP(ctx, c)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(strings.TrimSuffix(port, "/tcp"))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(ip, strconv.Itoa(p))), nil
}
