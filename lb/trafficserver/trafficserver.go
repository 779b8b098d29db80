// Package trafficserver is Apache Traffic Server 9.2 (Debian bookworm's
// trafficserver with the experimental plugins' sslheaders) as a reference
// implementation: verify_client MODERATE in sni.yaml asks every caller
// of the partner API for a certificate and aborts the handshake when one
// fails verification; sslheaders hands the verified certificate to a Lua
// remap script (tslua), which strips every caller-sent spelling of the
// header scheme's headers, answers Mandatory mode's 400 page to a caller
// without a certificate, and sets the scheme's headers (scheme.go: any
// built-in scheme or a team's own, from its properties). What ATS cannot be put in (a CRL,
// a verify depth: fixed at 7) Render answers as not supported.
package trafficserver

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"mtlsconform/contract"
	"mtlsconform/lb"
)

// Balancer is Apache Traffic Server 9.2.
type Balancer struct{}

func (Balancer) Name() string  { return "trafficserver" }
func (Balancer) Image() string { return "mtlsconform/trafficserver:bookworm" }

// Packages: sslheaders, the one plugin of 9.2 that reads the client
// certificate, is in the experimental plugins; tslua comes with the server.
func (Balancer) Packages() string { return "trafficserver trafficserver-experimental-plugins" }

// Command runs traffic_server alone in the foreground (no traffic_manager:
// a configuration is never reloaded, and a reload through the manager took
// longer than a new process), in a container of its own: the harness's
// way when asked for a container per configuration. Otherwise each
// configuration is a process of its own in one shared container
// (processes.go). The runroot file points its configuration folder at
// lb.ConfDir.
func (Balancer) Command() []string {
	return []string{"/usr/bin/traffic_server", "--run-root=" + lb.ConfDir + "/runroot.yaml"}
}

// ReadyLog is printed once the ports accept connections.
func (Balancer) ReadyLog() string { return "Traffic Server is fully initialized" }

// Profile is Traffic Server 9.2's with the reference configuration, as
// measured by the suite. A caller without a certificate gets the 400 page
// from the Lua script; every certificate that fails verification aborts
// the handshake (verify_client has no level that lets one through marked
// as failed): a mixed refusal. So in Optional mode an untrusted or expired
// certificate never reaches the backend as FAILED.
func (Balancer) Profile() contract.Profile {
	return contract.Profile{
		Name: "reference-trafficserver",
		Description: "Apache Traffic Server 9.2 (Debian bookworm, OpenSSL 3.0) rendered from the reference configuration: " +
			"sni.yaml verify_client MODERATE, sslheaders and a tslua remap script for the headers and the 400 page; no CRL or verify-depth option",
		Refusal: contract.RefuseMixed,
		Deviations: []contract.Deviation{
			{Clause: "C10", Mode: contract.Optional, Observed: contract.RefuseTLSAlert,
				Reason: "verify_client MODERATE aborts the handshake for a certificate that fails verification (alert \"unknown certificate authority\"); " +
					"Traffic Server 9.2 has no level or plugin hook that passes it on, so FAILED cannot reach the backend"},
			{Clause: "C11", Mode: contract.Optional, Observed: contract.RefuseTLSAlert,
				Reason: "an expired certificate is refused in the handshake (alert \"expired certificate\") in Optional mode too: " +
					"Traffic Server cannot pass it on marked FAILED"},
			{Clause: "C13", Mode: contract.Optional, ScenarioID: "untrusted-claims-success", Observed: contract.RefuseTLSAlert,
				Reason: "an untrusted caller is refused in the handshake instead of reaching the backend marked FAILED: " +
					"what it forged never arrives, but nor does its request"},
			{Clause: "C18", Mode: contract.Optional, ScenarioID: "untrusted-smuggles-success", Observed: contract.RefuseTLSAlert,
				Reason: "an untrusted caller is refused in the handshake instead of reaching the backend marked FAILED: " +
					"none of its spellings arrives, but nor does its request"},
		},
	}
}

// Mutations are the ways the configuration can be broken on purpose.
func (Balancer) Mutations() map[string]string { return mutations().Docs() }

// files are a configuration's text files by name; mutations edit one of
// them.
type files map[string]string

// in makes an edit of one file.
func in(name string, edit lb.Edit[string]) lb.Edit[files] {
	return func(f files, c lb.Config) (files, error) {
		text, err := edit(f[name], c)
		if err != nil {
			return f, fmt.Errorf("%s: %w", name, err)
		}
		out := maps.Clone(f)
		out[name] = text
		return out, nil
	}
}

// Render turns the typed configuration into Traffic Server's files.
func (Balancer) Render(c lb.Config, srv lb.ServerFiles) (lb.Rendered, error) {
	// Bad input is bad input first; then what this balancer cannot do.
	asked := c // what was asked for, before the defaults fill it in
	c, err := lb.Prepare(c)
	if err != nil {
		return lb.Rendered{}, err
	}
	if len(bytes.TrimSpace(asked.CRL)) > 0 {
		return lb.Rendered{}, contract.Unsupported("Traffic Server 9.2 has no CRL option (it would accept a revoked certificate)")
	}
	if asked.OCSPResponder != "" {
		return lb.Rendered{}, contract.Unsupported("Traffic Server 9.2 checks no client certificate by OCSP (its OCSP support staples responses for its own certificate)")
	}
	if asked.VerifyDepth != 0 {
		return lb.Rendered{}, contract.Unsupported("Traffic Server 9.2 has no verify-depth option (it is fixed at 7; verify depth %d asked for)", asked.VerifyDepth)
	}
	ss, err := renderScheme(c.Scheme)
	if err != nil {
		return lb.Rendered{}, err
	}
	f := files{}
	for name, tmpl := range templates {
		var b strings.Builder
		if err := tmpl.Execute(&b, map[string]any{
			"Dir":        lb.ConfDir,
			"Mode":       string(c.Mode),
			"CertHeader": c.Scheme.Cert.Header, // the certificate's header (an XFCC one too) is the script's CERT_HEADER
			"Backend":    lb.Backend,
			"Port":       lb.PortNumber(lb.Port),
			"PlainPort":  lb.PortNumber(lb.PlainPort),
			"PublicHost": lb.PublicHost,
			"StripTable": ss.StripTable,
			"NoneLines":  ss.NoneLines,
			"SetLines":   ss.SetLines,
			"Helpers":    ss.Helpers,
		}); err != nil {
			return lb.Rendered{}, fmt.Errorf("render %s: %w", name, err)
		}
		f[name] = b.String()
	}
	if f, err = mutations().Apply("trafficserver", f, c); err != nil {
		return lb.Rendered{}, err
	}
	own := map[string][]byte{"server-chain.pem": srv.Chain, "server.key": srv.Key}
	var all strings.Builder
	for _, name := range slices.Sorted(maps.Keys(f)) {
		own[name] = []byte(f[name])
		all.WriteString("=== " + name + "\n" + f[name])
	}
	own["truststore.pem"] = c.Truststore
	r := lb.Rendered{Config: all.String(), Files: own}
	r.Key = lb.HashFiles(r.Files)
	return r, nil
}
