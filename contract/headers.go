package contract

import (
	"errors"
	"fmt"
)

// Header names the contract speaks of: what a balancer forwards to the
// backend (C8–C14).
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

// ErrNotSupported marks a configuration an implementation or a target
// cannot be put in at all (a CRL bundle where it has no CRL option): the
// scenario that asked for it is reported as not supported, with the reason.
var ErrNotSupported = errors.New("not supported")

// Unsupported is an ErrNotSupported with its reason.
func Unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotSupported, fmt.Sprintf(format, args...))
}
