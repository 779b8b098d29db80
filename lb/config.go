// Package lb says what a load balancer under test is, without containers:
// the configuration a platform team sets (Config) and its validation, the
// Implementation interface each reference balancer's package satisfies,
// the files a configuration renders to, and the catalogue of deliberate
// breaks (mutations) the self-test uses. Starting balancers is harness's
// job; calling them is partner's.
package lb

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strings"

	"mtlsconform/contract"
)

// Every rendered configuration also has, beside its mTLS listener on 8443
// for ServerName, what a real balancer in front of a partner API has and
// what attacks go through (C19, C20):
//   - a plain-HTTP listener on 8088 that keeps forged headers out: it
//     redirects to HTTPS, as a DLB user sets it, where the balancer can
//     (Traffic Server's answers as to a caller without a certificate); a
//     slot's plain port is its TLS port + PlainPortOffset;
//   - PublicHost, a second virtual host on the same TLS port that asks for
//     no client certificate and proxies to the backend with every
//     contract header stripped; ServerName is the default host (no SNI
//     selects it) where the balancer has one (Traffic Server answers 403
//     without SNI).
//
// Every listener speaks HTTP/1.1 and HTTP/2 (ALPN) over TLS 1.2 and 1.3.
const (
	// ServerName is the partner API's host: the name on the run's server
	// certificate.
	ServerName      = "localhost"
	PublicHost      = "public.localhost"
	PlainPortOffset = 10000
)

// Where a rendered configuration lives and what it proxies to, inside the
// balancer's container.
const (
	ConfDir      = "/etc/mtlsconform"
	Port         = "8443/tcp"
	PlainPort    = "8088/tcp"
	BackendAlias = "productapi"
	BackendPort  = "8080/tcp"
	// Backend is the backend's address as a balancer names it.
	Backend = BackendAlias + ":8080"
)

// Config is a load balancer configuration: what a platform team sets on
// its client-certificate load balancer.
type Config struct {
	Mode contract.Mode
	// Truststore is the PEM bundle of trusted certificates (CAs or
	// self-signed clients), in the order the team lists them.
	Truststore []byte
	// CRL is an optional PEM bundle of X509 CRLs; when set every CA in a
	// chain needs its CRL in it.
	CRL []byte
	// OCSPResponder, when set, is the URL (http://HOST[:PORT]/PATH) of
	// the OCSP responder the balancer asks about each client certificate
	// (the leaf; its CAs are the CRL's business) before it lets it
	// through; a responder that does not give a good answer fails the
	// certificate (C24).
	OCSPResponder string
	// VerifyDepth bounds the chain length; 0 means 2 (leaf, two
	// intermediates' worth of CAs). nginx's own default is 1.
	VerifyDepth int
	// Scheme is the header set the balancer forwards (names and
	// encodings); empty is the dlb scheme.
	Scheme contract.Scheme
	// CertHeader renames the scheme's certificate header; empty keeps the
	// scheme's own (contract.DefaultCertHeader in the dlb scheme).
	CertHeader string
	// Instance gives a configuration a balancer of its own, apart from
	// equal ones: a scenario that changes its balancer in place (a new CRL
	// delivered, C23) names one. Rendering ignores it.
	Instance string
	// Mutations deliberately break the configuration (see Catalogue); the
	// conformant reference has none.
	Mutations []string
}

// WithDefaults fills in what was left empty.
func (c Config) WithDefaults() Config {
	if c.VerifyDepth == 0 {
		c.VerifyDepth = 2
	}
	if c.Scheme.Name == "" {
		c.Scheme, _ = contract.LookupScheme(contract.DefaultScheme)
	}
	if c.CertHeader == "" && c.Scheme.Cert.Field == "" {
		c.CertHeader = c.Scheme.Cert.Header
	}
	if c.Mode == "" {
		c.Mode = contract.Mandatory
	}
	return c
}

// Prepare is the opening every Render shares: the defaults filled in and
// the checks that hold for any balancer. A truststore must hold
// something, the mode must be one the contract knows, and the
// certificate header must be a plain token (letters, digits, - _ .: no
// configuration language needs it quoted) that names no other contract
// header.
func Prepare(c Config) (Config, error) {
	c = c.WithDefaults()
	if len(bytes.TrimSpace(c.Truststore)) == 0 {
		return c, fmt.Errorf("load balancer configuration has an empty truststore: give the PEM bundle of the CAs or clients to trust")
	}
	if c.Mode != contract.Mandatory && c.Mode != contract.Optional {
		return c, fmt.Errorf("unknown mode %q: use mandatory or optional", c.Mode)
	}
	if err := c.Scheme.Validate(); err != nil {
		return c, fmt.Errorf("header scheme %s: %w", c.Scheme.Name, err)
	}
	if c.OCSPResponder != "" {
		u, err := url.Parse(c.OCSPResponder)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(c.OCSPResponder, " \t\"';{}") {
			return c, fmt.Errorf("OCSP responder %q: give an http://HOST[:PORT]/PATH URL without credentials, query or quotes (OCSP is spoken over plain HTTP)", c.OCSPResponder)
		}
	}
	if c.CertHeader != "" && !contract.Token(c.CertHeader) {
		return c, fmt.Errorf("certificate header name %q is not a valid header name (letters, digits, - _ . only)", c.CertHeader)
	}
	// One header cannot carry two values, in any spelling a backend may
	// read as the same name (C18).
	s, err := c.Scheme.WithCertHeader(c.CertHeader)
	if err != nil {
		return c, err
	}
	c.Scheme = s
	return c, nil
}

// OCSPHostIsName says whether the responder's host is a name to resolve
// (not an address): some balancers then need a resolver configured.
func (c Config) OCSPHostIsName() bool {
	u, err := url.Parse(c.OCSPResponder)
	return err == nil && net.ParseIP(u.Hostname()) == nil
}

// PortNumber is a "8443/tcp" port's number.
func PortNumber(port string) string { return strings.TrimSuffix(port, "/tcp") }
