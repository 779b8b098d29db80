package runner

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/partner"
	"mtlsconform/steps"
)

// LiveOptions describe a load balancer the harness did not start.
type LiveOptions struct {
	URL  string        // https://host:port
	Mode contract.Mode // the mode it is configured in
	// Credential is a client certificate the target trusts; it plays the
	// feature files' "partner-a".
	Credential *pki.Identity
	// ServerRoots verify the target's own certificate.
	ServerRoots        *x509.CertPool
	ServerName         string
	InsecureSkipVerify bool
	APIPath            string // default productapi.ProductsPath
	// EchoPath is the path of a backend behind the target that follows the
	// echo contract; without it the header clauses are not applicable.
	EchoPath string
	// RequestsPath is the backend's request log (echo contract), reached
	// through the target with the trusted credential.
	RequestsPath string
	// CA is a CA certificate and key the target trusts (plays "Partner
	// Issuing CA"); with it the scenarios that need further leaves run.
	CA *pki.CA
	// CertHeader is the header the target forwards the certificate in.
	CertHeader string
	// PlainURL is the target's plain-HTTP listener (http://HOST[:PORT]),
	// where it has one; without it C19 is not applicable.
	PlainURL string
	// PublicHost is a host the target serves on the same address without
	// asking for client certificates; without it the C20 scenarios that
	// need one are not applicable.
	PublicHost string
	// ExpectProducts, when set, is the exact product list the target's API
	// answers (generic JSON values); ExpectProductsFrom names its file.
	ExpectProducts     []map[string]any
	ExpectProductsFrom string
	// OCSP is the URL of the harness's OCSP responder the target asks
	// (`mtlsconform ocsp-responder`, or an echo backend's), with its admin
	// token as the URL's password where it has one:
	// http://mtlsconform:TOKEN@HOST:PORT/PATH. Without it C24 is not
	// applicable.
	OCSP    string
	Timeout time.Duration
}

// Live runs scenarios against a live endpoint.
type Live struct {
	o         LiveOptions
	responder string // OCSP without its credentials, as the target names it
	admin     productapi.OCSPAdmin
}

// NewLive checks the options and returns the target.
func NewLive(o LiveOptions) (*Live, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("target %q: give an https://HOST[:PORT] URL", o.URL)
	}
	if o.Credential == nil {
		return nil, errors.New("a live target needs a client credential it trusts (LiveOptions.Credential): the trusted partner's certificate and key")
	}
	if o.ServerRoots == nil && !o.InsecureSkipVerify {
		return nil, errors.New("a live target's own certificate must be verified: give the CA that issued it (LiveOptions.ServerRoots), or knowingly skip the check (InsecureSkipVerify)")
	}
	if o.PlainURL != "" {
		pu, err := url.Parse(o.PlainURL)
		if err != nil || pu.Scheme != "http" || pu.Host == "" {
			return nil, fmt.Errorf("plain-HTTP target %q: give an http://HOST[:PORT] URL (the balancer's listener without TLS)", o.PlainURL)
		}
		o.PlainURL = strings.TrimRight(o.PlainURL, "/")
	}
	if strings.ContainsAny(o.PublicHost, "/: ") {
		return nil, fmt.Errorf("public host %q: give a host name only (no scheme, port or path)", o.PublicHost)
	}
	var responder string
	var admin productapi.OCSPAdmin
	if o.OCSP != "" {
		ou, err := url.Parse(o.OCSP)
		if err != nil || ou.Scheme != "http" || ou.Host == "" {
			return nil, fmt.Errorf("OCSP responder %q: give the http://HOST:PORT/PATH URL the target asks, as `mtlsconform ocsp-responder` printed it", o.OCSP)
		}
		if o.CA == nil || o.CA.Key == nil {
			return nil, errors.New("--ocsp needs the CA the target trusts, with its key (--ca-cert, --ca-key): the responder's answers are signed with it")
		}
		token, _ := ou.User.Password()
		ou.User = nil
		responder = ou.String()
		admin = productapi.OCSPAdmin{Base: (&url.URL{Scheme: ou.Scheme, Host: ou.Host}).String(), Token: token, Client: &http.Client{Timeout: 10 * time.Second}}
	}
	if o.APIPath == "" {
		o.APIPath = productapi.ProductsPath
	}
	if o.RequestsPath == "" {
		o.RequestsPath = productapi.RequestsPath
	}
	if o.ServerName == "" {
		o.ServerName = u.Hostname()
	}
	o.URL = strings.TrimRight(o.URL, "/")
	return &Live{o: o, responder: responder, admin: admin}, nil
}

// Open checks that the target answers (one call with the trusted
// credential) and puts the PKI it trusts into the catalogue under the
// feature files' names.
func (l *Live) Open(ctx context.Context, c *steps.Catalogue) error {
	if l.responder != "" {
		if err := l.openOCSP(ctx, c); err != nil {
			return err
		}
	}
	if err := l.preflight(ctx); err != nil {
		return err
	}
	l.seed(c)
	return nil
}

// openOCSP makes the responder answer good for the trusted credential and
// for every certificate the run issues under the CA, until a scenario
// says otherwise: the target asks about every caller, not only C24's.
func (l *Live) openOCSP(ctx context.Context, c *steps.Catalogue) error {
	good := func(ctx context.Context, cert *x509.Certificate) error {
		return l.SetOCSP(ctx, steps.OCSPSay{CA: l.o.CA, Cert: cert, Behaviour: productapi.OCSPRespond, Status: pki.OCSPGood})
	}
	if l.o.Credential.Cert.CheckSignatureFrom(l.o.CA.Cert) == nil {
		if err := good(ctx, l.o.Credential.Cert); err != nil {
			return fmt.Errorf("preflight: the OCSP responder %s (--ocsp) did not take the trusted credential's status, so no scenario ran: %w; "+
				"start it with `mtlsconform ocsp-responder` and give --ocsp the URL it printed, token included", l.responder, err)
		}
	}
	c.OnIssue = func(id *pki.Identity, issuer *pki.CA) error {
		if issuer != l.o.CA {
			return nil
		}
		return good(context.WithoutCancel(ctx), id.Cert)
	}
	return nil
}

// OCSPResponder is the responder the target asks, when one was named.
func (l *Live) OCSPResponder() string { return l.responder }

// SetOCSP uploads what the responder says about a certificate.
func (l *Live) SetOCSP(ctx context.Context, say steps.OCSPSay) error {
	return say.Upload(ctx, l.admin)
}

// OCSPAsked asks the responder.
func (l *Live) OCSPAsked(ctx context.Context, serial string) (int, error) {
	return l.admin.Asked(ctx, serial)
}

// seed puts the live PKI into the catalogue under the feature files' names.
func (l *Live) seed(c *steps.Catalogue) {
	issuing := l.o.CA
	if issuing == nil {
		// Without a CA key the target's trusted CA is known by certificate
		// only: enough to name it, not to issue from it.
		cert := l.o.Credential.Cert
		if len(l.o.Credential.Intermediates) > 0 {
			cert = l.o.Credential.Intermediates[0]
		}
		issuing = &pki.CA{Identity: pki.Identity{Cert: cert}}
	}
	root := issuing
	if n := len(issuing.Intermediates); n > 0 {
		root = &pki.CA{Identity: pki.Identity{Cert: issuing.Intermediates[n-1]}}
	}
	c.SeedCA(steps.PartnerRoot, root)
	c.SeedCA(steps.PartnerIssuing, issuing)
	c.SeedClient(steps.PartnerLeaf, l.o.Credential)
}

// Close has nothing to remove: the harness started nothing.
func (l *Live) Close(context.Context) error { return nil }

// DefaultProfile expects a balancer that refuses with HTTP 400 and has no
// known deviations; a run names another for other balancers.
func (l *Live) DefaultProfile() contract.Profile { return contract.GenericHTTP400 }

// Implementation is empty: the harness did not start this balancer.
func (l *Live) Implementation() string { return "" }

// Stats: a live target costs no containers.
func (l *Live) Stats() contract.Stats { return contract.Stats{} }

// Capabilities: one mode; the harness cannot reconfigure the target, sees
// the backend only through an echo backend, and issues leaves only with
// the key of a CA the target trusts.
func (l *Live) Capabilities() steps.Capabilities {
	c := steps.Capabilities{Modes: []contract.Mode{l.o.Mode}, Lacks: map[steps.Need]string{
		steps.NeedReconfigure: "the scenario configures the load balancer (truststore, CRL bundle, verify depth or certificate header); " +
			"the harness cannot change a live target's configuration",
	}}
	if l.o.EchoPath == "" {
		c.Lacks[steps.NeedBackendView] = "the scenario checks what the backend received; no backend that follows the echo contract was named"
	}
	if l.o.CA == nil {
		c.Lacks[steps.NeedNewLeaves] = "the scenario issues further certificates under the partner CA; no key of a CA the target trusts was given"
	}
	if l.o.PlainURL == "" {
		c.Lacks[steps.NeedPlainHTTP] = "the scenario calls the balancer's plain-HTTP listener; none was named (--http-target URL)"
	}
	if l.responder == "" {
		c.Lacks[steps.NeedOCSP] = "the scenario's balancer checks client certificates with the harness's OCSP responder; none was named " +
			"(point the target at `mtlsconform ocsp-responder` and run with --ocsp URL)"
	}
	if l.o.PublicHost == "" {
		c.Lacks[steps.NeedPublicHost] = "the scenario needs a second host the balancer serves on the same address without client certificates; none was named (--public-host NAME)"
	}
	return c
}

func (l *Live) Describe() string {
	return fmt.Sprintf("live target %s (%s mode)", l.o.URL, l.o.Mode)
}

// ProductCheck compares with the user's list when one was given, and
// otherwise checks only what the contract promises: a live API serves its
// own products, not the reference backend's.
func (l *Live) ProductCheck() steps.ProductCheck {
	if l.o.ExpectProducts != nil {
		return steps.ProductCheck{Want: l.o.ExpectProducts, Source: "the list in " + l.o.ExpectProductsFrom}
	}
	return steps.ProductCheck{Source: "contents not compared: pass --expect-products FILE to compare them"}
}

func (l *Live) MapPath(path string) (string, error) {
	switch path {
	case productapi.ProductsPath:
		return l.o.APIPath, nil
	case productapi.EchoPath:
		if l.o.EchoPath == "" {
			return "", steps.NotApplicable("%s", l.Capabilities().Lacks[steps.NeedBackendView])
		}
		return l.o.EchoPath, nil
	}
	return path, nil
}

func sameNames(a, b []string) bool {
	x, y := append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, "\x00") == strings.Join(y, "\x00")
}

// Endpoint accepts only the configuration the live target has.
func (l *Live) Endpoint(_ context.Context, s steps.Setup) (steps.Endpoint, error) {
	cfg := s.Config
	switch {
	case cfg.Mode != l.o.Mode:
		return steps.Endpoint{}, steps.NotApplicable("the target runs in %s mode; this scenario needs %s mode", l.o.Mode, cfg.Mode)
	case !sameNames(s.TrustNames, []string{steps.PartnerIssuing, steps.PartnerRoot}):
		return steps.Endpoint{}, steps.NotApplicable("needs a truststore holding %s; a live target's truststore cannot be changed by the harness", strings.Join(s.TrustNames, ", "))
	case len(s.CRLNames) > 0:
		return steps.Endpoint{}, steps.NotApplicable("needs a CRL bundle configured on the load balancer")
	case cfg.VerifyDepth != 0:
		return steps.Endpoint{}, steps.NotApplicable("needs verify depth %d configured on the load balancer", cfg.VerifyDepth)
	case cfg.OCSPResponder != "" && cfg.OCSPResponder != l.responder:
		return steps.Endpoint{}, steps.NotApplicable("needs the balancer to ask the OCSP responder %s; the target asks %s", cfg.OCSPResponder, l.responder)
	case cfg.CertHeader != "" && !strings.EqualFold(cfg.CertHeader, l.certHeader()):
		return steps.Endpoint{}, steps.NotApplicable("needs the certificate forwarded in %s; the target uses %s", cfg.CertHeader, l.certHeader())
	}
	return steps.Endpoint{URL: l.o.URL, PlainURL: l.o.PlainURL}, nil
}

// Hosts: the name the target is called by, and the public host the user named.
func (l *Live) Hosts() steps.Hosts {
	return steps.Hosts{Protected: l.o.ServerName, Public: l.o.PublicHost}
}

func (l *Live) certHeader() string {
	if l.o.CertHeader != "" {
		return l.o.CertHeader
	}
	return contract.DefaultCertHeader
}

func (l *Live) Caller() *partner.Caller {
	return &partner.Caller{
		ServerRoots:        l.o.ServerRoots,
		ServerName:         l.o.ServerName,
		InsecureSkipVerify: l.o.InsecureSkipVerify,
		Timeout:            l.o.Timeout,
	}
}

// BackendRequests asks the echo backend behind the target, through the
// target and with the trusted credential, what it received.
func (l *Live) BackendRequests(ctx context.Context, id string) ([]productapi.Echo, error) {
	if l.o.EchoPath == "" {
		return nil, steps.NotApplicable("%s", l.Capabilities().Lacks[steps.NeedBackendView])
	}
	res, err := l.Caller().Do(ctx, l.o.URL, partner.Request{
		Path:       l.o.RequestsPath + "?id=" + url.QueryEscape(id),
		Credential: l.o.Credential,
		SendChain:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("ask the backend behind the target what it received: %w", err)
	}
	if res.Status != http.StatusOK {
		return nil, fmt.Errorf("ask the backend behind the target what it received (%s%s): %s", l.o.URL, l.o.RequestsPath, res.Outcome())
	}
	var out []productapi.Echo
	if err := json.Unmarshal(res.Body, &out); err != nil {
		return nil, fmt.Errorf("the backend's request log at %s does not follow the echo contract: %v", l.o.RequestsPath, err)
	}
	return out, nil
}

// preflight makes one call with the trusted credential, so that an
// unreachable target, one that does not speak TLS, or one whose certificate
// does not verify stops the run with one clear error instead of failing
// every scenario.
func (l *Live) preflight(ctx context.Context) error {
	if _, err := l.Caller().Do(ctx, l.o.URL, partner.Request{Path: l.o.APIPath, Credential: l.o.Credential, SendChain: true}); err != nil {
		return fmt.Errorf("preflight: one GET %s with the trusted credential %s (TLS 1.2 or later, server name %q) did not get an answer, so no scenario ran: %w",
			l.o.APIPath, partner.Describe(l.o.Credential), l.o.ServerName, err)
	}
	return nil
}
