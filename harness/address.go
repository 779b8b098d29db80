package harness

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// reachesNetwork says whether this machine reaches containers on the run's
// network at their own addresses: the network's gateway is an address of
// one of this machine's interfaces (a local engine on Linux, the bridge in
// this network namespace). Then no port needs publishing, which saves a
// proxy process per port. A remote engine, Docker Desktop's virtual
// machine or a rootless engine answers no: ports are published on
// 127.0.0.1 there.
func (e *Environment) reachesNetwork(ctx context.Context) bool {
	res, err := e.docker.NetworkInspect(ctx, e.network.ID, client.NetworkInspectOptions{})
	if err != nil {
		return false
	}
	local := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			local[p.Addr().Unmap()] = true
		}
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.IsValid() && local[c.Gateway.Unmap()] {
			return true
		}
	}
	return false
}

// networkIP is a container's address on the run's network.
func (e *Environment) networkIP(ctx context.Context, c *testcontainers.DockerContainer) (string, error) {
	info, err := c.Inspect(ctx)
	if err != nil {
		return "", fmt.Errorf("find the address of container %.12s: %w", c.GetContainerID(), err)
	}
	if ep, ok := info.NetworkSettings.Networks[e.network.Name]; ok && ep.IPAddress.IsValid() {
		return ep.IPAddress.String(), nil
	}
	return "", fmt.Errorf("container %.12s has no address on the run's network %s", c.GetContainerID(), e.network.Name)
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
