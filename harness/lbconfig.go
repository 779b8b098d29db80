package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mtlsconform/contract"
	"sort"
)

// Header names the reference load balancer forwards to the backend.
const (
	HeaderVerify = "X-SSL-Client-Verify"
	HeaderDN     = "X-SSL-Client-DN"
	HeaderIssuer = "X-SSL-Issuer"
	HeaderSerial = "X-SSL-Client-Serial"
	// DefaultCertHeader is where the client certificate goes (URL-encoded
	// PEM) for a gateway behind the load balancer; WSO2 API Manager's name.
	DefaultCertHeader = "X-WSO2-CLIENT-CERTIFICATE"
)

// ContractHeaders are the names of the headers the contract speaks of, for
// a certificate header named certHeader: a balancer sets them itself and
// strips every copy a caller sends, in any spelling (C13, C18).
func ContractHeaders(certHeader string) []string {
	if certHeader == "" {
		certHeader = DefaultCertHeader
	}
	return []string{HeaderVerify, HeaderDN, HeaderIssuer, HeaderSerial, certHeader}
}

// Spellings are the names a backend may read as name: every choice of "-"
// or "_" at each dash (CGI, WSGI, PHP and Rack turn both into "_"), in
// name's own letter case; header names are case-insensitive, so together
// with letter case these are every spelling a caller can smuggle (C18).
func Spellings(name string) []string {
	out := []string{""}
	for _, r := range name {
		var next []string
		for _, prefix := range out {
			if r == '-' || r == '_' {
				next = append(next, prefix+"-", prefix+"_")
			} else {
				next = append(next, prefix+string(r))
			}
		}
		out = next
	}
	return out
}

// Every rendered configuration also has, beside its mTLS listener on 8443
// for ServerName, what a real balancer in front of a partner API has and
// what attacks go through (C19, C20):
//   - a plain-HTTP listener on 8088 that redirects to HTTPS, as a DLB user
//     sets it (a slot's plain port is its TLS port + PlainPortOffset);
//   - PublicHost, a second virtual host on the same TLS port that asks for
//     no client certificate and proxies to the backend with every
//     contract header stripped; ServerName stays the default host (no SNI
//     selects it).
//
// Every listener speaks HTTP/1.1 and HTTP/2 (ALPN) over TLS 1.2 and 1.3.
const (
	PublicHost      = "public.localhost"
	lbPlainPort     = "8088/tcp"
	PlainPortOffset = 10000
)

// LBConfig is a reference load balancer configuration: what a platform
// team sets on its client-certificate load balancer.
type LBConfig struct {
	Mode contract.Mode
	// Truststore is the PEM bundle of trusted certificates (CAs or
	// self-signed clients), in the order the team lists them.
	Truststore []byte
	// CRL is an optional PEM bundle of X509 CRLs; when set every CA in a
	// chain needs its CRL in it.
	CRL []byte
	// VerifyDepth bounds the chain length; 0 means 2 (leaf, two
	// intermediates' worth of CAs). nginx's own default is 1.
	VerifyDepth int
	// CertHeader carries the client certificate to the backend; empty means
	// DefaultCertHeader.
	CertHeader string
	// Mutations deliberately break the configuration (see mutations.go);
	// the conformant reference has none.
	Mutations []string
}

func (c LBConfig) withDefaults() LBConfig {
	if c.VerifyDepth == 0 {
		c.VerifyDepth = 2
	}
	if c.CertHeader == "" {
		c.CertHeader = DefaultCertHeader
	}
	if c.Mode == "" {
		c.Mode = contract.Mandatory
	}
	return c
}

// Paths inside the load balancer container.
const (
	lbConfDir    = "/etc/mtlsconform"
	lbPort       = "8443/tcp"
	backendAlias = "productapi"
	backendPort  = "8080/tcp"
)

func hashFiles(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Rendered is a configuration ready to copy into a container.
type Rendered struct {
	Config string            // the main configuration file's text
	Files  map[string][]byte // file name (inside /etc/mtlsconform) → content
	Key    string            // identity of the whole configuration
}
