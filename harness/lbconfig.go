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
