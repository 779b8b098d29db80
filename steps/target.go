package steps

import (
	"context"
	"errors"
	"fmt"

	"mtlsconform/contract"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/lb"
	"mtlsconform/partner"
)

// ErrNotApplicable marks a scenario the target cannot run with what it was
// given (a live endpoint whose configuration the harness cannot change, a
// backend whose view it cannot see). Such a scenario is reported as not
// applicable with the reason, never as passed.
var ErrNotApplicable = errors.New("not applicable")

// NotApplicable is an ErrNotApplicable with its reason.
func NotApplicable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotApplicable, fmt.Sprintf(format, args...))
}

// Setup is the load balancer configuration a scenario describes, with the
// names it used, so a target that cannot be reconfigured can tell whether
// it matches.
type Setup struct {
	Config     lb.Config
	TrustNames []string
	CRLNames   []string
}

// Endpoint is a load balancer a scenario calls.
type Endpoint struct {
	URL string
	// PlainURL is the balancer's plain-HTTP listener (http://…), where it
	// has one the harness knows of (C19).
	PlainURL string
	// Started is true when this request started it: the scenario paid
	// for a container.
	Started bool
}

// Need is a capability a scenario needs of its target beyond calling it;
// a scenario declares each with a tag of the same name ("@backend-view").
type Need string

const (
	// NeedBackendView: the scenario checks what the backend received.
	NeedBackendView Need = "backend-view"
	// NeedNewLeaves: the scenario issues certificates under the CAs the
	// target trusts (a second partner, an expired or wrong-purpose leaf).
	NeedNewLeaves Need = "new-leaves"
	// NeedReconfigure: the scenario configures the balancer (another
	// truststore, a CRL bundle, a verify depth, a certificate header).
	NeedReconfigure Need = "reconfigures"
	// NeedPlainHTTP: the scenario calls the balancer's plain-HTTP listener.
	NeedPlainHTTP Need = "plain-http"
	// NeedPublicHost: the scenario uses a second, public virtual host on
	// the balancer's address (one that asks for no client certificate).
	NeedPublicHost Need = "public-host"
	// NeedOCSP: the scenario's balancer checks client certificates with
	// an OCSP responder the harness tells what to answer (C24).
	NeedOCSP Need = "ocsp"
)

// Needs are every Need, in the order reasons are given.
var Needs = []Need{NeedReconfigure, NeedNewLeaves, NeedBackendView, NeedPlainHTTP, NeedPublicHost, NeedOCSP}

// Hosts are the names a target serves on its address: Protected is the
// host that asks for client certificates (the name partners use), Public
// a host that does not, where the target has one (C20).
type Hosts struct {
	Protected, Public string
}

// NeedOfTag returns the need a Gherkin tag declares.
func NeedOfTag(tag string) (Need, bool) {
	for _, n := range Needs {
		if tag == "@"+string(n) {
			return n, true
		}
	}
	return "", false
}

// Capabilities are what a target declares before scenarios run: the modes
// it can be checked in, and for each Need it cannot meet, why. A scenario
// whose tags ask for more is reported not applicable with that reason
// before any of its steps runs.
type Capabilities struct {
	Modes []contract.Mode
	Lacks map[Need]string
}

// Target is what scenarios call: a load balancer in the configuration the
// scenario describes, and a view of what the backend received.
type Target interface {
	// Capabilities say up front what the target can do.
	Capabilities() Capabilities
	// Endpoint returns a load balancer set up as described; a target that
	// cannot be set up so answers ErrNotApplicable with the reason.
	Endpoint(ctx context.Context, s Setup) (Endpoint, error)
	// MapPath turns a path of the feature files (/dev-portal-xapi/products,
	// /echo) into the target's own.
	MapPath(path string) (string, error)
	// Caller makes partner requests that verify the load balancer.
	Caller() *partner.Caller
	// Hosts are the virtual hosts the target serves.
	Hosts() Hosts
	// BackendRequests returns what the backend received under a request id.
	BackendRequests(ctx context.Context, id string) ([]productapi.Echo, error)
	// ProductCheck says how the product list is checked.
	ProductCheck() ProductCheck
	// Describe names the target for reports.
	Describe() string
}

// CRLDeliverer is a Target that can give a scenario's running
// configuration a new CRL bundle the way its balancer's documentation says
// (C23), and say how it did.
type CRLDeliverer interface {
	DeliverCRL(ctx context.Context, s Setup, crl []byte) (how string, err error)
}

// ProductCheck says what "the response is the product list" compares with.
type ProductCheck struct {
	// Want is the exact list (generic JSON values); nil checks only what
	// the contract promises: a JSON array of one or more product objects.
	Want   []map[string]any
	Source string // says where Want came from, or why there is none
}

// ReferenceProducts is the list the reference backend serves, as the
// product-list check compares it.
func ReferenceProducts() []map[string]any {
	list, err := productapi.CheckProductList(productapi.ProductsJSON(productapi.Products()))
	if err != nil {
		panic("the reference backend's own product list breaks the contract: " + err.Error())
	}
	return list
}
