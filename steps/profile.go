package steps

import (
	"fmt"
	"sort"
	"strings"
)

// Refusal is how an implementation says no to a caller it does not accept.
type Refusal string

const (
	// RefuseHTTP400: the handshake completes and the answer is HTTP 400
	// (nginx-based balancers: MuleSoft DLB, ingress-nginx).
	RefuseHTTP400 Refusal = "http-400"
	// RefuseTLSAlert: the handshake is aborted with a TLS alert and no HTTP
	// is spoken (AWS ALB verify, HAProxy, Envoy, Traefik).
	RefuseTLSAlert Refusal = "tls-alert"
)

// Profile says what to expect of one implementation: how it refuses, and
// which clauses it is known to deviate from and why. A known deviation is
// reported as such, never as passed and never as a red run; a profile that
// claims a deviation the implementation no longer shows fails, so profiles
// stay true.
type Profile struct {
	Name        string
	Description string
	Refusal     Refusal
	Deviations  map[string]string // clause → why
}

// Deviation returns the first known deviation that applies to a scenario
// checking these clauses in these modes. A deviation is keyed by a clause
// ("C11") or by a clause in one mode ("C15/optional").
func (p Profile) Deviation(clauses, modes []string) (clause, reason string, ok bool) {
	for _, c := range clauses {
		if r, found := p.Deviations[c]; found {
			return c, r, true
		}
		for _, m := range modes {
			if r, found := p.Deviations[c+"/"+m]; found {
				return c + " in " + m + " mode", r, true
			}
		}
	}
	return "", "", false
}

// ReferenceNginx is the profile of the reference load balancer this
// harness starts: nginx 1.22 with OpenSSL 3.0, as measured.
var ReferenceNginx = Profile{
	Name:        "reference-nginx",
	Description: "nginx 1.22 (Debian bookworm, OpenSSL 3.0) rendered from the reference configuration",
	Refusal:     RefuseHTTP400,
	Deviations: map[string]string{
		"C11": "nginx answers 400 to an expired certificate even with ssl_verify_client optional_no_ca; " +
			"the DLB documentation says the request passes with X-SSL-Client-Verify FAILED",
		"C15/optional": "nginx answers 400 to a revoked certificate even with ssl_verify_client optional_no_ca " +
			"(optional_no_ca only tolerates errors about an unknown issuer); the contract wants the request passed with FAILED",
	},
}

// GenericHTTP400 expects an nginx-like balancer with no known deviations.
var GenericHTTP400 = Profile{Name: "http-400", Description: "refuses with HTTP 400, no known deviations", Refusal: RefuseHTTP400}

// GenericTLSAlert expects a balancer that aborts the handshake.
var GenericTLSAlert = Profile{Name: "tls-alert", Description: "refuses with a TLS alert, no known deviations", Refusal: RefuseTLSAlert}

var profiles = map[string]Profile{
	ReferenceNginx.Name:  ReferenceNginx,
	GenericHTTP400.Name:  GenericHTTP400,
	GenericTLSAlert.Name: GenericTLSAlert,
}

// LookupProfile finds a profile by name.
func LookupProfile(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		names := make([]string, 0, len(profiles))
		for n := range profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		return Profile{}, fmt.Errorf("unknown profile %q: use one of %s", name, strings.Join(names, ", "))
	}
	return p, nil
}
