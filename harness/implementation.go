package harness

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"mtlsconform/contract"
)

// Implementation is what a reference balancer is: the image it runs in
// (built offline from Debian packages when missing), how an LBConfig is
// rendered into its configuration files, how it is started and known to
// be ready, the profile it was measured to have, and the ways its
// configuration can be broken on purpose.
type Implementation interface {
	// Name is how users pick it: "nginx".
	Name() string
	// Image is the tag of its image; Packages are the Debian packages it
	// is built from when the tag is missing.
	Image() string
	Packages() string
	// Render turns cfg, mutations included, into the files under
	// /etc/mtlsconform, with the run's server credential.
	Render(cfg LBConfig, srv ServerFiles) (Rendered, error)
	// Command starts it in the foreground.
	Command() []string
	// ReadyLog is a log line it prints once started; readiness is then
	// proven by a TLS handshake with the run's server certificate.
	ReadyLog() string
	// Profile is how it refuses and where it knowingly deviates.
	Profile() contract.Profile
	// Mutations are the deliberate breaks it supports: name → what breaks.
	Mutations() map[string]string
}

// ErrNotSupported is what Render answers for a configuration the
// implementation cannot be put in at all (a CRL bundle where it has no CRL
// option): the scenario is then reported as not supported.
var ErrNotSupported = errors.New("not supported by this implementation")

// ServerFiles are the run's server certificate chain and key, in PEM.
type ServerFiles struct {
	Chain, Key []byte
}

// Implementations are the reference implementations the harness can run.
func Implementations() []Implementation {
	return []Implementation{Nginx{}, HAProxy{}, Apache{}, Caddy{}}
}

// LookupImplementation finds an implementation by name.
func LookupImplementation(name string) (Implementation, error) {
	var names []string
	for _, i := range Implementations() {
		if i.Name() == name {
			return i, nil
		}
		names = append(names, i.Name())
	}
	return nil, fmt.Errorf("unknown implementation %q: use one of %s", name, strings.Join(names, ", "))
}

// ownImage says whether the project builds ref itself, and from what.
func ownImage(ref string) (packages, name, binary string, ok bool) {
	for _, i := range Implementations() {
		if i.Image() == ref {
			return i.Packages(), i.Name(), i.Command()[0], true
		}
	}
	return "", "", "", false
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
