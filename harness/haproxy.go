package harness

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"mtlsconform/contract"
)

// HAProxy is Debian bookworm's HAProxy 2.6 configured to behave like an
// nginx-based client-certificate balancer (the DLB): it never fails the
// TLS handshake over a client certificate, and decides in the HTTP layer
// instead, so Mandatory mode can answer nginx's 400 pages and Optional
// mode can pass FAILED on. HAProxy's own way (verify required) refuses
// with a TLS alert, and its plain "verify optional" still aborts the
// handshake for a certificate that fails verification (measured with a
// revoked one); verify required is kept as a mutation, to show the suite
// tells the two apart.
type HAProxy struct{}

func (HAProxy) Name() string     { return "haproxy" }
func (HAProxy) Image() string    { return HAProxyImage }
func (HAProxy) Packages() string { return "haproxy,ca-certificates" }

// Command runs HAProxy in the foreground (-db) with the rendered file.
func (HAProxy) Command() []string {
	return []string{"haproxy", "-db", "-f", lbConfDir + "/haproxy.cfg"}
}

// ReadyLog is empty: HAProxy prints nothing once it listens outside
// master-worker mode, so readiness is a TLS handshake.
func (HAProxy) ReadyLog() string { return "" }

// Profile is HAProxy 2.6's with the reference configuration, as measured
// by the whole suite: it refuses with the 400 pages and follows the
// contract where nginx does not (an expired or revoked certificate in
// Optional mode passes as FAILED), so it knows no deviation. The verify
// depth scenarios are not supported (Render says so), not deviations.
func (HAProxy) Profile() contract.Profile {
	return contract.Profile{
		Name: "reference-haproxy",
		Description: "HAProxy 2.6 (Debian bookworm, OpenSSL 3.0) rendered from the reference configuration: " +
			"verify optional with every verification error ignored, 400 pages answered by http-request return; " +
			"no verify-depth option",
		Refusal: contract.RefuseHTTP400,
	}
}

// Mutations are the ways the HAProxy configuration can be broken on purpose.
func (HAProxy) Mutations() map[string]string { return mutationDocs(haproxyMutations()) }

// The two refusals of Mandatory mode, nginx's pages word for word. The
// order matters: ssl_c_verify is 0 when no certificate was sent, so only
// ssl_c_used tells a caller without one apart.
const (
	haproxyNoCertRule  = `http-request return status 400 content-type "text/html" string "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>No required SSL certificate was sent</center>\r\n</body>\r\n</html>\r\n" if !{ ssl_c_used }`
	haproxyBadCertRule = `http-request return status 400 content-type "text/html" string "<html>\r\n<head><title>400 The SSL certificate error</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The SSL certificate error</center>\r\n</body>\r\n</html>\r\n" if !{ ssl_c_verify 0 }`
	// haproxyVerifyIgnoringErrors keeps every certificate problem out of the
	// handshake: without the ignore lists HAProxy aborts it with an alert.
	haproxyVerifyIgnoringErrors = "verify optional ca-ignore-err all crt-ignore-err all"
	// haproxyEncodedCert is nginx's $ssl_client_escaped_cert rebuilt from
	// the DER: base64 wrapped at 64 with %0A, then + / = percent-encoded so
	// that form-decoding (WSO2) recovers the PEM too. Literal percents are
	// doubled in a log-format string.
	haproxyEncodedCert = `'-----BEGIN%%20CERTIFICATE-----%%0A%[ssl_c_der,base64,regsub("(.{1,64})","\1%0A",g),regsub("\+","%2B",g),regsub("/","%2F",g),regsub("=","%3D",g)]-----END%%20CERTIFICATE-----%%0A'`
)

// haproxyGlobal is the process-wide part of haproxy.cfg, shared by a
// configuration on its own and by the shared balancer.
const haproxyGlobal = `global
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client  30s
    timeout server  30s

`

var haproxyTemplate = template.Must(template.New("haproxy.cfg").Parse(`# Rendered by mtlsconform: HAProxy 2.6 as the reference mTLS load balancer ({{.Mode}} mode).
# The handshake never fails on a client certificate (verify optional, every
# error ignored): the outcome is read in the HTTP layer from ssl_c_used (was
# a certificate sent) and ssl_c_verify (0 when it verified, also when none
# was sent; unlike ssl_c_err it survives TLS session resumption).
` + haproxyGlobal + `frontend mtls
    bind :8443 ssl crt {{.Dir}}/server.pem ca-file {{.Dir}}/truststore.pem{{if .HasCRL}} crl-file {{.Dir}}/crl.pem{{end}} {{.Verify}}
{{- if .Mandatory}}

    # Mandatory: nginx's 400 pages, for no certificate and for any
    # verification error (untrusted, expired, not yet valid, wrong purpose,
    # revoked, a CA's CRL missing or expired).
    {{.NoCertRule}}
    {{.BadCertRule}}
{{- end}}

    # HAProxy passes client-sent copies on unless told (C13). "-m beg" is
    # case-insensitive; "-m reg ^X-SSL-" would match nothing, since HAProxy
    # keeps header names in lower case.
    http-request del-header X-SSL- -m beg
{{- range .CertHeaders}}
    http-request del-header {{.}}
{{- end}}

    http-request set-header {{.HeaderVerify}} NONE    if !{ ssl_c_used }
    http-request set-header {{.HeaderVerify}} SUCCESS if { ssl_c_used } { ssl_c_verify 0 }
    http-request set-header {{.HeaderVerify}} FAILED  if { ssl_c_used } !{ ssl_c_verify 0 }
    http-request set-header {{.HeaderDN}} %[ssl_c_s_dn(,0,rfc2253)] if { ssl_c_used }
    http-request set-header {{.HeaderIssuer}} %[ssl_c_i_dn(,0,rfc2253)] if { ssl_c_used }
    http-request set-header {{.HeaderSerial}} %[ssl_c_serial,hex] if { ssl_c_used }
    http-request set-header {{.CertHeader}} {{.EncodedCert}} if { ssl_c_used }

    default_backend productapi

backend productapi
    server productapi {{.Backend}}
`))

// Render turns the typed configuration into haproxy.cfg and its files:
// HAProxy wants the server chain and key in one file.
func (HAProxy) Render(c LBConfig, srv ServerFiles) (Rendered, error) {
	if c.VerifyDepth != 0 {
		// HAProxy 2.6 has no bind option for it, and rendering without
		// one would pass a depth scenario by accident or fail it unfairly.
		return Rendered{}, fmt.Errorf("%w: HAProxy 2.6 has no verify-depth option (verify depth %d asked for)", ErrNotSupported, c.VerifyDepth)
	}
	c = c.withDefaults()
	if len(bytes.TrimSpace(c.Truststore)) == 0 {
		return Rendered{}, fmt.Errorf("load balancer configuration has an empty truststore")
	}
	if c.Mode != contract.Mandatory && c.Mode != contract.Optional {
		return Rendered{}, fmt.Errorf("unknown mode %q: use mandatory or optional", c.Mode)
	}
	if !haproxyHeaderName(c.CertHeader) {
		return Rendered{}, fmt.Errorf("certificate header name %q is not a valid header name (letters, digits, - _ . only)", c.CertHeader)
	}
	certHeaders := []string{DefaultCertHeader}
	if !strings.EqualFold(c.CertHeader, DefaultCertHeader) {
		// The default name is stripped too: a gateway configured for it
		// must not read a caller's copy.
		certHeaders = append(certHeaders, c.CertHeader)
	}
	var b strings.Builder
	err := haproxyTemplate.Execute(&b, map[string]any{
		"Mode":         c.Mode,
		"Mandatory":    c.Mode == contract.Mandatory,
		"Dir":          lbConfDir,
		"Verify":       haproxyVerifyIgnoringErrors,
		"HasCRL":       len(c.CRL) > 0,
		"NoCertRule":   haproxyNoCertRule,
		"BadCertRule":  haproxyBadCertRule,
		"CertHeaders":  certHeaders,
		"HeaderVerify": HeaderVerify,
		"HeaderDN":     HeaderDN,
		"HeaderIssuer": HeaderIssuer,
		"HeaderSerial": HeaderSerial,
		"CertHeader":   c.CertHeader,
		"EncodedCert":  haproxyEncodedCert,
		"Backend":      backendAlias + ":" + strings.TrimSuffix(backendPort, "/tcp"),
	})
	if err != nil {
		return Rendered{}, fmt.Errorf("render haproxy.cfg: %w", err)
	}
	conf := b.String()
	conf, err = applyMutations("haproxy", conf, c, haproxyMutations())
	if err != nil {
		return Rendered{}, err
	}
	serverPEM := append([]byte(nil), srv.Chain...)
	if len(serverPEM) > 0 && serverPEM[len(serverPEM)-1] != '\n' {
		serverPEM = append(serverPEM, '\n')
	}
	serverPEM = append(serverPEM, srv.Key...)
	return rendered("haproxy.cfg", conf, c, map[string][]byte{"server.pem": serverPEM}), nil
}

// haproxyHeaderName accepts names that need no quoting in haproxy.cfg.
func haproxyHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

func haproxyMutations() map[string]mutation {
	verifySet := "http-request set-header " + HeaderVerify + " FAILED  if { ssl_c_used } !{ ssl_c_verify 0 }\n"
	return map[string]mutation{
		"optional-for-mandatory": {
			doc: "Mandatory mode without its two 400 rules, i.e. HAProxy's 'verify optional' as Optional mode renders it: " +
				"callers without a certificate or with an untrusted one reach the backend (marked NONE or FAILED)",
			apply: onlyIn(contract.Mandatory, chain(
				replace("    "+haproxyNoCertRule+"\n", ""),
				replace("    "+haproxyBadCertRule+"\n", ""),
			)),
		},
		"ssl-c-verify-only": {
			doc: "Mandatory mode refuses on ssl_c_verify alone, which is 0 when no certificate was sent: " +
				"callers without a certificate reach the backend",
			apply: onlyIn(contract.Mandatory, replace("    "+haproxyNoCertRule+"\n", "")),
		},
		"verify-required": {
			doc: "Mandatory mode as HAProxy does it by default (verify required, no ignored errors): " +
				"every refusal is a TLS alert instead of the 400 page",
			apply: onlyIn(contract.Mandatory, replace(" "+haproxyVerifyIgnoringErrors+"\n", " verify required\n")),
		},
		"pass-client-verify": {
			doc: "a client-supplied X-SSL-Client-Verify reaches the backend (kept aside before the headers are stripped, put back after)",
			apply: chain(
				replace("    http-request del-header X-SSL- -m beg\n",
					"    http-request set-var(txn.client_verify) req.hdr("+HeaderVerify+")\n    http-request del-header X-SSL- -m beg\n"),
				replace(verifySet, verifySet+"    http-request set-header "+HeaderVerify+" %[var(txn.client_verify)] if { var(txn.client_verify) -m found }\n"),
			),
		},
		"no-dn-header": {
			doc:   "the subject DN header is not forwarded",
			apply: replace("    http-request set-header "+HeaderDN+" %[ssl_c_s_dn(,0,rfc2253)] if { ssl_c_used }\n", ""),
		},
		"no-serial-header": {
			doc:   "the serial header is not forwarded",
			apply: replace("    http-request set-header "+HeaderSerial+" %[ssl_c_serial,hex] if { ssl_c_used }\n", ""),
		},
		"cert-not-encoded": {
			doc: "the certificate header encodes only the line breaks and leaves base64's + / = raw: " +
				"form-decoding (WSO2) turns every + into a space",
			apply: replace(`,regsub("\+","%2B",g),regsub("/","%2F",g),regsub("=","%3D",g)`, ""),
		},
		"crl-ignored": {
			doc: "the CRL bundle is not loaded",
			apply: func(conf string, c LBConfig) (string, error) {
				if len(c.CRL) == 0 {
					return conf, nil // nothing to ignore in a configuration without CRLs
				}
				return replace(" crl-file "+lbConfDir+"/crl.pem", "")(conf, c)
			},
		},
	}
}

// HAProxy serves every configuration of a run from one master-worker
// process: each is a slot, a frontend and backend of their own in
// slots/<id>.cfg, and a reload (SIGUSR2 to the master) brings a new one up.
var _ Multiplexed = HAProxy{}

func (HAProxy) HostFiles() map[string][]byte {
	return map[string][]byte{
		"host.cfg": []byte("# Rendered by mtlsconform: HAProxy 2.6 as the reference mTLS load balancer shared by a run.\n" +
			"# Every configuration is a slot in slots/, added by a reload.\n" + haproxyGlobal),
		// -f reads the folder's *.cfg files, so it has to exist.
		"slots/README": []byte("One frontend and backend per configuration, <id>.cfg, and its files under <id>/.\n"),
	}
}

// HostCommand runs HAProxy in master-worker mode (-W), which reloads on
// SIGUSR2, reading the host file and every slot.
func (HAProxy) HostCommand() []string {
	return []string{"haproxy", "-W", "-db", "-f", lbConfDir + "/host.cfg", "-f", lbConfDir + "/slots"}
}
func (HAProxy) HostReadyLog() string { return "Loading success." }
func (HAProxy) Reload() Reload       { return Reload{Signal: "USR2"} }
func (HAProxy) ConfigTest() []string {
	return []string{"haproxy", "-c", "-f", lbConfDir + "/host.cfg", "-f", lbConfDir + "/slots"}
}

// Slot moves the rendered frontend and backend, mutations included, into
// slot id under names of their own.
func (HAProxy) Slot(r Rendered, id string, port int) (map[string][]byte, error) {
	const frontend = "\nfrontend mtls\n"
	start := strings.Index(r.Config, frontend)
	if start < 0 {
		return nil, fmt.Errorf("haproxy slot %s: the rendered configuration has no frontend", id)
	}
	body, err := replaceOnce(inSlot(r.Config[start+1:], id), id, map[string]string{
		"frontend mtls\n":              "frontend mtls_" + id + "\n",
		"bind :8443 ":                  fmt.Sprintf("bind :%d ", port),
		"default_backend productapi\n": "default_backend productapi_" + id + "\n",
		"\nbackend productapi\n":       "\nbackend productapi_" + id + "\n",
	})
	if err != nil {
		return nil, err
	}
	files := slotFiles(r, "haproxy.cfg", id)
	files["slots/"+id+".cfg"] = []byte("# Slot " + id + " of the shared balancer.\n" + body)
	return files, nil
}
