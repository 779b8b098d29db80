package steps

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"time"

	"mtlsconform/fixtures/pki"
)

// rsaKeys are the RSA keys of this process, by certificate name: one takes
// about 75 ms of CPU to make, and each run of a matrix (five) or of a test
// binary (dozens) made its own. Runs share them; within a run a name is one
// certificate, so no two certificates of a run share a key.
var rsaKeys = struct {
	sync.Mutex
	m map[string]crypto.Signer
}{m: map[string]crypto.Signer{}}

func processKey(name string) (crypto.Signer, error) {
	rsaKeys.Lock()
	defer rsaKeys.Unlock()
	if k, ok := rsaKeys.m[name]; ok {
		return k, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("make an RSA key for %q: %w", name, err)
	}
	rsaKeys.m[name] = k
	return k, nil
}

// Catalogue holds the run's named CAs and client certificates. Scenarios
// that name the same certificate the same way share it, so keys are made
// once per run and scenarios that build the same truststore share one load
// balancer. It is safe for concurrent scenarios.
type Catalogue struct {
	mu    sync.Mutex
	cas   map[string]*caEntry
	certs map[string]*certEntry
	// ocspOwners: the scenario whose OCSP answers a certificate carries
	// (C24); the responder answers one way per certificate at a time.
	ocspOwners map[string]string
	// OnIssue, when set, hears of every client certificate issued under
	// a CA the user gave (a live target's responder must know it).
	OnIssue func(id *pki.Identity, issuer *pki.CA) error
}

type caEntry struct {
	ca     *pki.CA
	parent string
	// crl is cached until the CA revokes another certificate, so the same
	// bundle (and so the same load balancer) serves later scenarios.
	crl        *x509.RevocationList
	crlRevoked int
	revoked    int
	seeded     bool // given by the user for a live target
	expiredCRL *x509.RevocationList
}

// ClientSpec is how a scenario describes a client certificate.
type ClientSpec struct {
	Issuer     string // CA name; empty for self-signed
	Variant    string // "", "expired", "not yet valid", "serverAuth-only", "revoked"
	KeyType    pki.KeyType
	SelfSigned bool
	// DNSNames gives the certificate that many DNS names, to make it big
	// (C21): 400 names make a forwarded header of about 21 KiB.
	DNSNames int
}

type certEntry struct {
	id     *pki.Identity
	spec   ClientSpec
	seeded bool
}

// SeedCA names a CA the target trusts, given by the user (its key may
// be missing: then nothing can be issued under it).
func (c *Catalogue) SeedCA(name string, ca *pki.CA) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cas[name] = &caEntry{ca: ca, seeded: true}
}

// SeedClient names a client credential the target trusts, given by the
// user.
func (c *Catalogue) SeedClient(name string, id *pki.Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.certs[name] = &certEntry{id: id, seeded: true}
}

// NewCatalogue returns an empty catalogue.
func NewCatalogue() *Catalogue {
	return &Catalogue{cas: map[string]*caEntry{}, certs: map[string]*certEntry{}, ocspOwners: map[string]string{}}
}

// CA defines (or finds) a CA: a root when parent is empty, else an
// intermediate under parent. Asking for a name with another parent is an
// error: a name means one certificate for the whole run.
func (c *Catalogue) CA(name, parent string) (*pki.CA, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cas[name]; ok {
		if !e.seeded && e.parent != parent {
			return nil, fmt.Errorf("CA %q is already defined under %q, not %q: use another name", name, e.parent, parent)
		}
		return e.ca, nil
	}
	if _, ok := c.certs[name]; ok {
		return nil, fmt.Errorf("%q already names a client certificate", name)
	}
	var ca *pki.CA
	var err error
	if parent == "" {
		ca, err = pki.NewRootCA(name)
	} else {
		p, ok := c.cas[parent]
		if !ok {
			return nil, fmt.Errorf("CA %q is not defined: define it before %q", parent, name)
		}
		if p.ca.Key == nil {
			return nil, keyless(parent, name)
		}
		ca, err = p.ca.NewIntermediate(name)
	}
	if err != nil {
		return nil, err
	}
	c.cas[name] = &caEntry{ca: ca, parent: parent}
	return ca, nil
}

// Client defines (or finds) a client certificate.
func (c *Catalogue) Client(name string, spec ClientSpec) (*pki.Identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.certs[name]; ok {
		if !e.seeded && e.spec != spec {
			return nil, fmt.Errorf("client certificate %q is already defined differently (%+v): use another name", name, e.spec)
		}
		return e.id, nil
	}
	if _, ok := c.cas[name]; ok {
		return nil, fmt.Errorf("%q already names a CA", name)
	}
	opts := []pki.Option{pki.WithKeyType(spec.KeyType)}
	if spec.KeyType == pki.RSA2048 {
		key, err := processKey(name)
		if err != nil {
			return nil, err
		}
		opts = append(opts, pki.WithKey(key))
	}
	if n := spec.DNSNames; n > 0 {
		opts = append(opts, pki.Modify(func(t *x509.Certificate) {
			for i := 0; i < n; i++ {
				t.DNSNames = append(t.DNSNames, fmt.Sprintf("api-%04d.%s.partner.example", i, dnsLabel(name)))
			}
		}))
	}
	switch spec.Variant {
	case "", "revoked":
	case "expired":
		opts = append(opts, pki.Expired())
	case "not yet valid":
		opts = append(opts, pki.NotYetValid())
	case "serverAuth-only":
		opts = append(opts, pki.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
	default:
		return nil, fmt.Errorf("unknown certificate variant %q", spec.Variant)
	}
	var id *pki.Identity
	var err error
	if spec.SelfSigned {
		id, err = pki.SelfSignedClient(name, opts...)
	} else {
		issuer, ok := c.cas[spec.Issuer]
		if !ok {
			return nil, fmt.Errorf("CA %q is not defined: define it before %q", spec.Issuer, name)
		}
		if issuer.ca.Key == nil {
			return nil, keyless(spec.Issuer, name)
		}
		if issuer.seeded && spec.Variant == "revoked" {
			return nil, NotApplicable("revoking %q needs the target to load this run's CRL", name)
		}
		id, err = issuer.ca.IssueClient(name, opts...)
		if err == nil && spec.Variant == "revoked" {
			err = issuer.ca.Revoke(id.Cert)
			issuer.revoked++
		}
		if err == nil && issuer.seeded && c.OnIssue != nil {
			err = c.OnIssue(id, issuer.ca)
		}
	}
	if err != nil {
		return nil, err
	}
	c.certs[name] = &certEntry{id: id, spec: spec}
	return id, nil
}

// dnsLabel turns a certificate name into one DNS label.
func dnsLabel(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

func keyless(ca, name string) error {
	return NotApplicable("issuing %q under %q needs that CA's key, and it was not given", name, ca)
}

// Identity finds a defined client certificate.
func (c *Catalogue) Identity(name string) (*pki.Identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.certs[name]; ok {
		return e.id, nil
	}
	return nil, fmt.Errorf("client certificate %q is not defined in this scenario: add a Given step that makes it", name)
}

// Authority finds a defined CA.
func (c *Catalogue) Authority(name string) (*pki.CA, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cas[name]; ok {
		return e.ca, nil
	}
	return nil, fmt.Errorf("no CA named %q is defined: add a Given step that makes it", name)
}

// ClaimOCSP gives the OCSP answers about a certificate to one scenario:
// scenarios run side by side, and the responder says one thing of a
// certificate at a time.
func (c *Catalogue) ClaimOCSP(name, scenario string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if owner, ok := c.ocspOwners[name]; ok && owner != scenario {
		return fmt.Errorf("the OCSP answers about %q are already set by the scenario %q: give each OCSP scenario certificates of its own", name, owner)
	}
	c.ocspOwners[name] = scenario
	return nil
}

// Certificate finds a CA or client certificate by name, for truststores.
func (c *Catalogue) Certificate(name string) (*x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cas[name]; ok {
		return e.ca.Cert, nil
	}
	if e, ok := c.certs[name]; ok {
		return e.id.Cert, nil
	}
	return nil, fmt.Errorf("no CA or certificate named %q is defined: add a Given step that makes it", name)
}

// crlSigner finds a CA that can sign a CRL; the caller holds c.mu.
func (c *Catalogue) crlSigner(name string) (*caEntry, error) {
	e, ok := c.cas[name]
	if !ok {
		return nil, fmt.Errorf("no CA named %q is defined", name)
	}
	if e.ca.Key == nil {
		return nil, NotApplicable("a CRL of %q needs that CA's key", name)
	}
	return e, nil
}

// ExpiredCRL returns a revocation list of the CA whose nextUpdate has
// passed, made once per run.
func (c *Catalogue) ExpiredCRL(name string) (*x509.RevocationList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, err := c.crlSigner(name)
	if err != nil {
		return nil, err
	}
	if e.expiredCRL == nil {
		crl, err := e.ca.CRL(-time.Hour)
		if err != nil {
			return nil, err
		}
		e.expiredCRL = crl
	}
	return e.expiredCRL, nil
}

// CRL returns the CA's current revocation list, reused while nothing new
// was revoked.
func (c *Catalogue) CRL(name string) (*x509.RevocationList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, err := c.crlSigner(name)
	if err != nil {
		return nil, err
	}
	if e.crl == nil || e.crlRevoked != e.revoked {
		crl, err := e.ca.CRL(7 * 24 * time.Hour)
		if err != nil {
			return nil, err
		}
		e.crl, e.crlRevoked = crl, e.revoked
	}
	return e.crl, nil
}

// UpdatedCRL is the CRL a team pushes for the CA after the balancer
// started: what the CA has revoked, plus revoke and minus unrevoke (named
// client certificates). The run's own CRL of the CA stays as it is.
func (c *Catalogue) UpdatedCRL(name string, revoke, unrevoke []string) (*x509.RevocationList, error) {
	certs := func(names []string) ([]*x509.Certificate, error) {
		var out []*x509.Certificate
		for _, n := range names {
			id, err := c.Identity(n)
			if err != nil {
				return nil, err
			}
			out = append(out, id.Cert)
		}
		return out, nil
	}
	add, err := certs(revoke)
	if err != nil {
		return nil, err
	}
	drop, err := certs(unrevoke)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, err := c.crlSigner(name)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return e.ca.UpdatedCRL(7*24*time.Hour, add, drop)
}
