// Package onboard answers the onboarding question: will this partner's
// certificate be accepted, and does adding it break anyone else? It lints
// the certificate, combines the current truststore with what the partner
// needs (the current bytes unchanged, then the additions), proves the
// combined truststore on the reference load balancer, optionally calls a
// live target as the partner, and gives a verdict. Reading the partner's
// files and printing belong to the command line.
package onboard

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/output"
	"mtlsconform/partner"
	"mtlsconform/runner"
	"mtlsconform/steps"
)

// Input is what onboarding works on.
type Input struct {
	// Partner is the partner's credential when its key is known, nil
	// otherwise: without it the partner is not called, only verified
	// offline.
	Partner *pki.Identity
	// Chain is the partner's certificate chain, leaf first.
	Chain []*x509.Certificate
	// TruststorePath names the current truststore; Truststore is its
	// content, which the combined truststore starts with byte for byte.
	TruststorePath string
	Truststore     []byte
	// Out is the file the combined truststore is written to; nothing is
	// written when it is empty or when the lint refuses the partner.
	Out string
	// Prove starts the reference load balancer with the combined
	// truststore and checks the promises of onboarding on it.
	Prove bool
	// Harness configures the reference load balancer of the proof.
	Harness harness.Options
	// Live, when set, is a live target to call as the partner.
	Live *runner.LiveOptions
	// Scheme is the header set the reference forwards the partner's
	// identity in, and the proof checks at its backend; dlb when empty.
	Scheme contract.Scheme
}

// Run lints, combines, writes and proves, and returns the verdict. An
// error means onboarding could not be checked (no Docker, an unwritable
// --out); a refused partner is a Report with the REJECT verdict.
func Run(ctx context.Context, in Input) (*Report, error) {
	if len(in.Chain) == 0 {
		return nil, errors.New("onboard: no partner certificate given: pass the partner's certificate chain, leaf first")
	}
	current, err := pki.ParseCertificates(in.TruststorePath, in.Truststore)
	if err != nil {
		return nil, err
	}
	leaf := in.Chain[0]
	rep := &Report{Partner: pki.DNOfRaw(leaf.RawSubject), Truststore: in.TruststorePath}
	lint := pki.Lint(pki.LintInput{Leaf: leaf, Chain: in.Chain[1:], Truststore: current})
	rep.Findings = lint.Findings
	for _, c := range lint.Add {
		rep.Added = append(rep.Added, pki.DNOfRaw(c.RawSubject))
	}
	newBundle := pki.AppendToBundle(in.Truststore, lint.Add)
	if lint.OK() && in.Out != "" {
		if err := output.WriteFile(in.Out, newBundle); err != nil {
			return nil, fmt.Errorf("write the combined truststore: %w", err)
		}
		rep.Output = in.Out
	}
	if lint.OK() && in.Prove {
		if err := proveOnReference(ctx, rep, in.Partner, current, newBundle, in.Harness, in.Scheme); err != nil {
			return nil, fmt.Errorf("prove the combined truststore on the reference load balancer: %w", err)
		}
	}
	switch {
	case in.Live != nil && in.Partner != nil:
		checkLive(ctx, rep, *in.Live, in.Partner)
	case in.Live != nil:
		rep.prove(false, "live target", "needs the partner's key (--partner-key or --partner-p12) to call %s as the partner", in.Live.URL)
	}
	rep.Verdict = verdict(lint.OK(), rep.Proof)
	return rep, nil
}

// verdict accepts the partner only when the lint found nothing that makes
// a load balancer refuse it and every proof held.
func verdict(lintOK bool, proof []ProofLine) Verdict {
	if !lintOK {
		return Reject
	}
	for _, p := range proof {
		if !p.OK {
			return Reject
		}
	}
	return Accept
}

// proveOnReference starts the reference load balancer with the new bundle
// and checks the three promises of onboarding.
func proveOnReference(ctx context.Context, rep *Report, id *pki.Identity, current []*x509.Certificate, newBundle []byte, opts harness.Options, scheme contract.Scheme) error {
	newCerts, err := pki.ParseCertificates("new truststore", newBundle)
	if err != nil {
		return fmt.Errorf("the combined truststore does not parse back: %w", err)
	}
	keptTrust(rep, current, newCerts)
	if opts.Implementation == nil {
		opts.Implementation = all.Default()
	}
	env, err := harness.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer env.Close(context.WithoutCancel(ctx))
	bal, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: newBundle, Scheme: scheme})
	if errors.Is(err, contract.ErrNotSupported) {
		return fmt.Errorf("the reference load balancer (%s) cannot forward header scheme %s: %w; choose another --scheme or implementation", opts.Implementation.Name(), scheme.Name, err)
	}
	if err != nil {
		return fmt.Errorf("the reference load balancer did not start with the new truststore: %w", err)
	}
	rep.prove(true, "bundle loads", "the reference load balancer (%s, Mandatory mode) starts and serves with the new truststore", opts.Implementation.Name())
	if err := callReference(ctx, rep, env.Caller(), bal.URL, id, opts.Implementation.Profile().Refusal); err != nil {
		return err
	}
	if id == nil {
		return nil
	}
	return identityForwarded(ctx, rep, env, bal.URL, id, scheme)
}

// identityForwarded calls the backend's echo as the partner: the API
// behind the balancer must see the partner's identity in the header
// scheme it reads.
func identityForwarded(ctx context.Context, rep *Report, env *harness.Environment, url string, id *pki.Identity, scheme contract.Scheme) error {
	if scheme.Name == "" {
		scheme, _ = contract.LookupScheme(contract.DefaultScheme)
	}
	res, err := env.Caller().Do(ctx, url, partner.Request{Path: productapi.EchoPath, Credential: id, SendChain: true})
	if err != nil {
		return err
	}
	seen, err := env.BackendRequests(ctx, res.RequestID)
	if err != nil {
		return err
	}
	if len(seen) != 1 {
		rep.prove(false, "identity forwarded", "the partner's call to the backend's echo got %s and reached the backend %d time(s)", res.Outcome(), len(seen))
		return nil
	}
	what, err := steps.ForwardedIdentity(scheme, http.Header(seen[0].Headers), id.Cert)
	if err != nil {
		rep.prove(false, "identity forwarded", "%v", err)
		return nil
	}
	rep.prove(true, "identity forwarded", "the backend saw the partner in %s", what)
	return nil
}

// keptTrust checks that every certificate that validated against the
// current truststore still validates against the new one.
func keptTrust(rep *Report, current, newCerts []*x509.Certificate) {
	broken := 0
	for _, c := range current {
		before, after := pki.Validates(c, current), pki.Validates(c, newCerts)
		if before == nil && after != nil {
			broken++
			rep.prove(false, "existing trust kept", "%s validated before and no longer does: %v", pki.DNOfRaw(c.RawSubject), after)
		}
	}
	if broken == 0 {
		rep.prove(true, "existing trust kept", "all %d certificate(s) of the current truststore validate in the new one as they did before, kept byte for byte", len(current))
	}
}

// callReference calls the reference load balancer as the partner, as a
// stranger and without a certificate: only the partner may get in.
// A refusal is the one the implementation's profile names (a 400, or a
// TLS alert where that is how it refuses).
func callReference(ctx context.Context, rep *Report, caller *partner.Caller, url string, id *pki.Identity, refusal contract.Refusal) error {
	if id != nil {
		res, err := caller.Do(ctx, url, partner.Request{Path: productapi.ProductsPath, Credential: id, SendChain: true})
		if err != nil {
			return err
		}
		rep.prove(res.Status == http.StatusOK, "partner accepted", "the partner's credential got %s", res.Outcome())
	} else {
		rep.prove(true, "partner accepted", "not called: no partner key given (--partner-key or --partner-p12); the chain was verified offline")
	}
	stranger, err := pki.SelfSignedClient("mtlsconform onboarding stranger")
	if err != nil {
		return err
	}
	res, err := caller.Do(ctx, url, partner.Request{Path: productapi.ProductsPath, Credential: stranger})
	if err != nil {
		return err
	}
	rep.prove(refusal.Shows(res.TLSAlert, res.Status), "stranger refused", "an unknown self-signed certificate got %s", res.Outcome())
	none, err := caller.Do(ctx, url, partner.Request{Path: productapi.ProductsPath})
	if err != nil {
		return err
	}
	page := none.Status == http.StatusBadRequest && strings.Contains(string(none.Body), "No required SSL certificate was sent")
	rep.prove(page || refusal == contract.RefuseTLSAlert && none.TLSAlert != "",
		"no certificate refused", "a call without a certificate got %s", none.Outcome())
	return nil
}

// checkLive calls the live endpoint as the partner: is the partner trusted
// there (already, or once the new truststore is deployed)?
func checkLive(ctx context.Context, rep *Report, o runner.LiveOptions, id *pki.Identity) {
	o.Credential = id
	live, err := runner.NewLive(o)
	if err != nil {
		rep.prove(false, "live target", "%v", err)
		return
	}
	res, err := live.Caller().Do(ctx, o.URL, partner.Request{Path: o.APIPath, Credential: id, SendChain: true})
	switch {
	case err != nil:
		rep.prove(false, "live target", "%v", err)
	case res.Status == http.StatusOK:
		rep.prove(true, "live target", "%s accepted the partner: %s", o.URL, res.Outcome())
	default:
		rep.prove(false, "live target", "%s did not accept the partner (%s): is the new truststore deployed there?", o.URL, res.Outcome())
	}
}
