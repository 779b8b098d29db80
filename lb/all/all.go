// Package all is the one list of the reference implementations: adding a
// balancer is its own package under lb/ and one line here.
package all

import (
	"fmt"
	"strings"

	"mtlsconform/lb"
	"mtlsconform/lb/apache"
	"mtlsconform/lb/caddy"
	"mtlsconform/lb/haproxy"
	"mtlsconform/lb/nginx"
	"mtlsconform/lb/trafficserver"
)

// Implementations are the reference implementations, the default first.
func Implementations() []lb.Implementation {
	return []lb.Implementation{
		nginx.Balancer{}, // the default: what the DLB and ingress-nginx are built on
		haproxy.Balancer{},
		apache.Balancer{},
		caddy.Balancer{},
		trafficserver.Balancer{},
	}
}

// Default is the reference implementation a run uses unless told otherwise.
func Default() lb.Implementation { return Implementations()[0] }

// Lookup finds an implementation by name.
func Lookup(name string) (lb.Implementation, error) {
	for _, i := range Implementations() {
		if i.Name() == name {
			return i, nil
		}
	}
	return nil, fmt.Errorf("unknown implementation %q: use one of %s", name, strings.Join(Names(), ", "))
}

// Names are the implementations' names, the default first.
func Names() []string {
	var names []string
	for _, i := range Implementations() {
		names = append(names, i.Name())
	}
	return names
}
