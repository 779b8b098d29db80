package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/partner"
	"mtlsconform/steps"
)

// Target is a steps.Target with a lifecycle: the runner opens it before
// the scenarios (starting containers, or checking that a live endpoint
// answers, and putting the PKI it trusts into the run's catalogue) and
// closes it after them, also when scenarios fail.
type Target interface {
	steps.Target
	Open(ctx context.Context, cat *steps.Catalogue) error
	Close(ctx context.Context) error
	// Stats say what the target cost the run (containers started).
	Stats() contract.Stats
	// Implementation names the reference implementation the target runs;
	// empty for a balancer the harness did not start.
	Implementation() string
	// DefaultProfile is the profile a run uses when none is given: the
	// implementation's measured one, or the generic one for a live target.
	DefaultProfile() contract.Profile
}

// Reference runs scenarios against a reference implementation started by
// the harness: one balancer serving each distinct configuration in a slot
// of its own.
type Reference struct {
	// Options configure the harness environment the reference runs in.
	Options harness.Options
	// Mutations are applied to every configuration: a deliberately broken
	// reference, to prove the suite notices.
	Mutations []string
	// Shared, when set, is an environment the caller started and will
	// close: runs one after another (the mutation self-test) reuse its
	// network and backend, and each run removes only its load balancers.
	Shared *harness.Environment
	// KeepLoadBalancers leaves a shared environment's load balancers
	// running at Close, for the next run to add its slots to: short runs
	// one after another (a focused self-test) then pay a reload per
	// configuration instead of a container each. The environment's Close
	// removes them.
	KeepLoadBalancers bool

	env *harness.Environment
	cat *steps.Catalogue
}

// Open starts the run's network and backend, or takes the shared ones.
func (r *Reference) Open(ctx context.Context, cat *steps.Catalogue) error {
	r.cat = cat
	if r.Shared != nil {
		r.env = r.Shared
		return nil
	}
	opts := r.Options
	opts.Implementation = r.impl()
	env, err := harness.Start(ctx, opts)
	if err != nil {
		return err
	}
	r.env = env
	return nil
}

// Close removes every container and the network the run made; of a shared
// environment, only the load balancers.
func (r *Reference) Close(ctx context.Context) error {
	switch {
	case r.env == nil:
		return nil
	case r.Shared != nil && r.KeepLoadBalancers:
		return nil
	case r.Shared != nil:
		return r.env.ReleaseLoadBalancers(ctx)
	}
	return r.env.Close(ctx)
}

// Stats say how many containers the reference started.
func (r *Reference) Stats() contract.Stats {
	if r.env == nil {
		return contract.Stats{}
	}
	return r.env.Stats()
}

// Capabilities: the reference is configured as each scenario says, and
// its backend and PKI are the run's own.
func (r *Reference) Capabilities() steps.Capabilities {
	return steps.Capabilities{Modes: contract.Modes}
}

func (r *Reference) Endpoint(ctx context.Context, s steps.Setup) (steps.Endpoint, error) {
	cfg, err := r.config(s)
	if err != nil {
		return steps.Endpoint{}, err
	}
	lb, started, err := r.env.Acquire(ctx, cfg)
	if errors.Is(err, contract.ErrNotSupported) {
		return steps.Endpoint{}, err // the implementation's own reason, naming it
	}
	if err != nil {
		return steps.Endpoint{}, err
	}
	return steps.Endpoint{URL: lb.URL, PlainURL: lb.PlainURL, Started: started}, nil
}

// config is the configuration a scenario's setup asks of the reference,
// with the run's mutations: the suite's applied, the implementation's
// added for the harness.
func (r *Reference) config(s steps.Setup) (lb.Config, error) {
	cfg := s.Config
	rest, err := r.applySuiteMutations(&cfg)
	if err != nil {
		return cfg, err
	}
	cfg.Mutations = append(append([]string(nil), cfg.Mutations...), rest...)
	return cfg, nil
}

// DeliverCRL gives the scenario's running configuration a new CRL bundle
// (C23): the configuration is the one Endpoint served.
func (r *Reference) DeliverCRL(ctx context.Context, s steps.Setup, crl []byte) (string, error) {
	cfg, err := r.config(s)
	if err != nil {
		return "", err
	}
	bal, _, err := r.env.Acquire(ctx, cfg)
	if err != nil {
		return "", err
	}
	return r.env.DeliverCRL(ctx, bal, crl, !slices.Contains(r.Mutations, crlNotReloaded))
}

// OCSPResponder is the backend's: every reference balancer that checks
// OCSP asks it (C24).
func (r *Reference) OCSPResponder() string { return harness.OCSPResponder }

// SetOCSP uploads what the backend's responder says about a certificate;
// under ocsp-fail-open it says good wherever it was to fail.
func (r *Reference) SetOCSP(ctx context.Context, say steps.OCSPSay) error {
	if slices.Contains(r.Mutations, ocspFailOpen) && (say.Behaviour != productapi.OCSPRespond || say.Status == pki.OCSPUnknown || say.Stale) {
		say = steps.OCSPSay{CA: say.CA, Cert: say.Cert, Behaviour: productapi.OCSPRespond, Status: pki.OCSPGood}
	}
	admin, err := r.env.OCSPAdmin(ctx)
	if err != nil {
		return err
	}
	return say.Upload(ctx, admin)
}

// OCSPAsked asks the backend's responder.
func (r *Reference) OCSPAsked(ctx context.Context, serial string) (int, error) {
	admin, err := r.env.OCSPAdmin(ctx)
	if err != nil {
		return 0, err
	}
	return admin.Asked(ctx, serial)
}

// Hosts: every rendered configuration serves the run's server name with
// client certificates and a public host beside it.
func (r *Reference) Hosts() steps.Hosts {
	return steps.Hosts{Protected: lb.ServerName, Public: lb.PublicHost}
}

func (r *Reference) MapPath(path string) (string, error) { return path, nil }

// ProductCheck is exact: the reference backend's list is known.
func (r *Reference) ProductCheck() steps.ProductCheck {
	return steps.ProductCheck{Want: steps.ReferenceProducts(), Source: "the reference backend's list"}
}

func (r *Reference) Caller() *partner.Caller { return r.env.Caller() }

func (r *Reference) BackendRequests(ctx context.Context, id string) ([]productapi.Echo, error) {
	return r.env.BackendRequests(ctx, id)
}

func (r *Reference) Describe() string {
	if len(r.Mutations) > 0 {
		return fmt.Sprintf("reference %s with mutations %v", r.impl().Name(), r.Mutations)
	}
	return "reference " + r.impl().Name()
}

// DefaultProfile is the implementation's measured profile.
func (r *Reference) DefaultProfile() contract.Profile { return r.impl().Profile() }

// Implementation names the implementation the reference runs.
func (r *Reference) Implementation() string { return r.impl().Name() }

// impl is the implementation the reference runs.
func (r *Reference) impl() lb.Implementation {
	switch {
	case r.Shared != nil:
		return r.Shared.Implementation()
	case r.Options.Implementation != nil:
		return r.Options.Implementation
	}
	return all.Default()
}
