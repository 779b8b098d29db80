package contract

import (
	"fmt"
	"net/http"
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
	// RefuseMixed: a caller without a certificate gets the HTTP 400 page,
	// a certificate the balancer does not accept is refused with a TLS
	// alert (Caddy with verify_if_given, Apache with optional_no_ca for
	// expired or revoked certificates).
	RefuseMixed Refusal = "http-400-or-tls-alert"
)

// Shows says whether a call that ended with this TLS alert (empty for
// none) or HTTP status is a refusal of this kind.
func (r Refusal) Shows(alert string, status int) bool {
	switch r {
	case "":
		return true
	case RefuseTLSAlert:
		return alert != ""
	case RefuseHTTP400:
		return alert == "" && status == http.StatusBadRequest
	case RefuseMixed:
		return alert != "" || status == http.StatusBadRequest
	}
	return false
}

// Deviation is one way an implementation is known to differ from the
// contract, for a clause in one mode (or in both when Mode is empty).
// Most deviations are a refusal where the contract wants something else
// (a 400 instead of passing the request on, an alert instead of the 400
// page): then Observed names that refusal, and the deviation covers a
// failed scenario only when one of its calls shows it; any other failure
// of the clause stays a failure. A deviation in what reaches the backend
// (a header's format) has no refusal to show: Observed is empty and any
// contract failure of the clause is the deviation.
type Deviation struct {
	Clause   string
	Mode     Mode
	Reason   string
	Observed Refusal
	// ScenarioID, when set, narrows the deviation to the scenario tagged
	// @id:<ScenarioID>: the clause's other scenarios must pass as usual.
	// A tag, not the scenario's name: renaming a scenario keeps it.
	ScenarioID string `json:",omitempty"`
}

// Key names the deviation in reports: "C11" or "C15/optional".
func (d Deviation) Key() string {
	if d.Mode == "" {
		return d.Clause
	}
	return d.Clause + "/" + string(d.Mode)
}

// Where says the clause and mode in words.
func (d Deviation) Where() string {
	if d.Mode == "" {
		return d.Clause
	}
	return d.Clause + " in " + string(d.Mode) + " mode"
}

// Profile says what to expect of one implementation: how it refuses, and
// which clauses it is known to deviate from and why. A known deviation is
// reported as such, never as passed and never as a red run; a profile that
// claims a deviation the implementation no longer shows fails, so profiles
// stay true.
type Profile struct {
	Name        string
	Description string
	Refusal     Refusal
	Deviations  []Deviation
}

// Deviation returns the known deviation that applies to a scenario (by
// its tags) checking these clauses in these modes.
func (p Profile) Deviation(tags []string, clauses []string, modes []Mode) (Deviation, bool) {
	for _, c := range clauses {
		for _, d := range p.Deviations {
			if d.Clause != c || (d.ScenarioID != "" && !contains(tags, "@id:"+d.ScenarioID)) {
				continue
			}
			if d.Mode == "" || contains(modes, d.Mode) {
				return d, true
			}
		}
	}
	return Deviation{}, false
}

func contains[T comparable](list []T, x T) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// GenericHTTP400 expects an nginx-like balancer with no known deviations.
var GenericHTTP400 = Profile{Name: "http-400", Description: "refuses with HTTP 400, no known deviations", Refusal: RefuseHTTP400}

// GenericTLSAlert expects a balancer that aborts the handshake. It cannot
// send C1's 400 page, since no HTTP is spoken: that is its one deviation,
// and it holds only where the caller was in fact refused by an alert.
var GenericTLSAlert = Profile{
	Name:        "tls-alert",
	Description: "refuses in the TLS handshake with an alert (no HTTP answer)",
	Refusal:     RefuseTLSAlert,
	Deviations: []Deviation{
		{Clause: "C1", Mode: Mandatory, Observed: RefuseTLSAlert,
			Reason: "the balancer refuses a caller without a certificate in the TLS handshake, so there is no HTTP 400 " +
				"\"No required SSL certificate was sent\" page; the caller is refused all the same"},
	},
}

// Profiles are the generic profiles a run can name; each implementation
// has its measured one too (lb.Implementation.Profile).
func Profiles() []Profile { return []Profile{GenericHTTP400, GenericTLSAlert} }

// LookupProfile finds a profile by name.
func LookupProfile(name string) (Profile, error) {
	var names []string
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return Profile{}, fmt.Errorf("unknown profile %q: use one of %s", name, strings.Join(names, ", "))
}
