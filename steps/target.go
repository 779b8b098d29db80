package steps

import (
	"context"
	"errors"
	"fmt"

	"mtlsconform/contract"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
)

// ErrNotApplicable marks a scenario the target cannot run with what it was
// given (a live endpoint whose configuration the harness cannot change, a
// backend whose view it cannot see). Such a scenario is reported as not
// applicable with the reason, never as passed.
var ErrNotApplicable = errors.New("not applicable")

func notApplicable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotApplicable, fmt.Sprintf(format, args...))
}

// Setup is the load balancer configuration a scenario describes, with the
// names it used, so a target that cannot be reconfigured can tell whether
// it matches.
type Setup struct {
	Config     harness.LBConfig
	TrustNames []string
	CRLNames   []string
}

// Endpoint is a load balancer a scenario calls.
type Endpoint struct {
	URL string
	// Started is true when this request started it: the scenario paid
	// for a container.
	Started bool
}

// Target is what scenarios call: a load balancer in the configuration the
// scenario describes, and a view of what the backend received.
type Target interface {
	// Endpoint returns a load balancer set up as described.
	Endpoint(ctx context.Context, s Setup) (Endpoint, error)
	// MapPath turns a path of the feature files (/dev-portal-xapi/products,
	// /echo) into the target's own.
	MapPath(path string) (string, error)
	// Caller makes partner requests that verify the load balancer.
	Caller() *harness.Caller
	// BackendRequests returns what the backend received under a request id.
	BackendRequests(ctx context.Context, id string) ([]productapi.Echo, error)
	// ProductCheck says how the product list is checked.
	ProductCheck() ProductCheck
	// Modes are the modes the target can be checked in: both for a
	// reference that is configured per scenario, one for a live target.
	Modes() []contract.Mode
	// Describe names the target for reports.
	Describe() string
}

// ProductCheck says what "the response is the product list" compares with.
type ProductCheck struct {
	// Want is the exact list (generic JSON values); nil checks only what
	// the contract promises: a JSON array of one or more product objects.
	Want   []map[string]any
	Source string // says where Want came from, or why there is none
}

// referenceProducts is the list the reference backend serves.
func referenceProducts() []map[string]any {
	list, err := productapi.CheckProductList(productapi.ProductsJSON(productapi.Products()))
	if err != nil {
		panic("the reference backend's own product list breaks the contract: " + err.Error())
	}
	return list
}

// Reference runs scenarios against the reference nginx started by the
// harness, one container per distinct configuration.
type Reference struct {
	Env *harness.Environment
	// Mutations are applied to every configuration: a deliberately broken
	// reference, to prove the suite notices.
	Mutations []string
	// Catalogue is the run's PKI, for mutations that name its certificates.
	Catalogue *Catalogue
}

func (r *Reference) Endpoint(ctx context.Context, s Setup) (Endpoint, error) {
	cfg := s.Config
	rest, err := r.applySuiteMutations(&cfg)
	if err != nil {
		return Endpoint{}, err
	}
	cfg.Mutations = append(append([]string(nil), cfg.Mutations...), rest...)
	lb, started, err := r.Env.Acquire(ctx, cfg)
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{URL: lb.URL, Started: started}, nil
}

func (r *Reference) MapPath(path string) (string, error) { return path, nil }

// Modes: the reference is configured in whatever mode a scenario says.
func (r *Reference) Modes() []contract.Mode {
	return []contract.Mode{contract.Mandatory, contract.Optional}
}

// ProductCheck is exact: the reference backend's list is known.
func (r *Reference) ProductCheck() ProductCheck {
	return ProductCheck{Want: referenceProducts(), Source: "the reference backend's list"}
}

func (r *Reference) Caller() *harness.Caller { return r.Env.Caller() }

func (r *Reference) BackendRequests(ctx context.Context, id string) ([]productapi.Echo, error) {
	return r.Env.BackendRequests(ctx, id)
}

func (r *Reference) Describe() string {
	if len(r.Mutations) > 0 {
		return fmt.Sprintf("reference nginx with mutations %v", r.Mutations)
	}
	return "reference nginx"
}
