package steps

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
)

// OCSPTarget is a Target whose balancer can ask an OCSP responder the
// harness tells what to answer (C24): the reference's backend, or the
// responder a live balancer was pointed at.
type OCSPTarget interface {
	// OCSPResponder is the responder's URL as the balancer's
	// configuration names it; empty when the target has none.
	OCSPResponder() string
	// SetOCSP tells the responder what to say about a certificate.
	SetOCSP(ctx context.Context, say OCSPSay) error
	// OCSPAsked is how many requests about the certificate with serial
	// (hex) the responder had.
	OCSPAsked(ctx context.Context, serial string) (int, error)
}

// OCSPSay is what the responder is to say about one certificate.
type OCSPSay struct {
	CA   *pki.CA
	Cert *x509.Certificate
	// Behaviour: respond (with Status), down (no answer at all) or
	// garbage (200 and no OCSP response).
	Behaviour productapi.OCSPBehaviour
	Status    pki.OCSPStatus
	// Stale responses' nextUpdate has passed: an hour ago, beyond the
	// five minutes of clock skew nginx and Apache allow.
	Stale bool
}

// String says it as the evidence does.
func (s OCSPSay) String() string {
	switch s.Behaviour {
	case productapi.OCSPDown:
		return "no answer (the connection closed)"
	case productapi.OCSPGarbage:
		return "HTTP 200 with a body that is no OCSP response"
	}
	if s.Stale {
		return fmt.Sprintf("%q in a response whose nextUpdate passed an hour ago", s.Status)
	}
	return fmt.Sprintf("%q in a response valid for an hour", s.Status)
}

// Answer is the upload that makes a responder say it: responses signed by
// the CA beforehand, one per CertID hash a balancer may ask with.
func (s OCSPSay) Answer(now time.Time) (productapi.OCSPAnswer, error) {
	a := productapi.OCSPAnswer{Issuer: s.CA.Cert.Raw, Serial: s.Cert.SerialNumber.Text(16), Behaviour: s.Behaviour}
	if s.Behaviour != productapi.OCSPRespond {
		return a, nil
	}
	this, next := now.Add(-5*time.Minute), now.Add(time.Hour)
	if s.Stale {
		this, next = now.Add(-2*time.Hour), now.Add(-time.Hour)
	}
	a.Responses = map[string][]byte{}
	for _, h := range pki.OCSPHashes {
		der, err := s.CA.OCSPResponse(s.Cert.SerialNumber, s.Status, this, next, h)
		if err != nil {
			return a, err
		}
		a.Responses[h.String()] = der
	}
	return a, nil
}

// Upload makes the responder behind admin say it.
func (s OCSPSay) Upload(ctx context.Context, admin productapi.OCSPAdmin) error {
	a, err := s.Answer(time.Now())
	if err != nil {
		return err
	}
	return admin.Set(ctx, []productapi.OCSPAnswer{a})
}

func (st *scenario) ocspTarget() (OCSPTarget, error) {
	t, ok := st.suite.Target.(OCSPTarget)
	if !ok || t.OCSPResponder() == "" {
		return nil, NotApplicable("%s", needOCSPReason)
	}
	return t, nil
}

// needOCSPReason is why a target without a responder cannot run C24.
const needOCSPReason = "the scenario's balancer checks client certificates with the harness's OCSP responder; " +
	"none was named (--ocsp URL, with the target's responder pointed at `mtlsconform ocsp-responder`)"

// useOCSP makes the scenario's balancer check each client certificate
// with the harness's responder.
func (st *scenario) useOCSP() error {
	t, err := st.ocspTarget()
	if err != nil {
		return err
	}
	if err := st.configurable(); err != nil {
		return err
	}
	st.cfg.OCSPResponder = t.OCSPResponder()
	return nil
}

// ocspSays tells the responder what to say about a certificate of the CA,
// before or between calls.
func (st *scenario) ocspSays(ctx context.Context, caName, name string, say OCSPSay) error {
	t, err := st.ocspTarget()
	if err != nil {
		return err
	}
	ca, err := st.suite.Catalogue.Authority(caName)
	if err != nil {
		return err
	}
	if ca.Key == nil {
		return NotApplicable("an OCSP response of %q is signed with that CA's key, and it was not given", caName)
	}
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return err
	}
	if err := id.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		return fmt.Errorf("%q was not issued by %q, so its OCSP responder cannot answer for it: name the CA that issued it", name, caName)
	}
	if err := st.suite.Catalogue.ClaimOCSP(name, st.uri+" "+st.name); err != nil {
		return err
	}
	say.CA, say.Cert = ca, id.Cert
	if err := t.SetOCSP(ctx, say); err != nil {
		return err
	}
	st.checked("the OCSP responder for %q answers requests about %q (serial %x) with %s", caName, name, id.Cert.SerialNumber, say)
	return nil
}

func (st *scenario) ocspStatus(ctx context.Context, ca, name, status, stale string) error {
	return st.ocspSays(ctx, ca, name, OCSPSay{Behaviour: productapi.OCSPRespond, Status: pki.OCSPStatus(status), Stale: stale != ""})
}

func (st *scenario) ocspFails(ctx context.Context, ca, how, name string) error {
	b := productapi.OCSPDown
	if how == "answers garbage" {
		b = productapi.OCSPGarbage
	}
	return st.ocspSays(ctx, ca, name, OCSPSay{Behaviour: b})
}

// ocspAsked checks that the balancer asked the responder about the
// certificate during the scenario: a balancer that checks OCSP cannot have
// let it through, or refused it for its status, without asking once.
func (st *scenario) ocspAsked(ctx context.Context, name string) error {
	t, err := st.ocspTarget()
	if err != nil {
		return err
	}
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return err
	}
	n, err := t.OCSPAsked(ctx, id.Cert.SerialNumber.Text(16))
	if err != nil {
		return err
	}
	if n == 0 {
		c, err := st.last()
		if err != nil {
			return err
		}
		return st.violation(c, "expected the load balancer to ask the OCSP responder about %q (serial %x); it never did: it does not check client certificates by OCSP",
			name, id.Cert.SerialNumber)
	}
	st.checked("the load balancer asked the OCSP responder about %q %d time(s)", name, n)
	return nil
}
