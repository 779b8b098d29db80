package caddy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"mtlsconform/contract"
	"mtlsconform/lb"
)

// Balancer is Debian bookworm's Caddy 2.6, configured in its native JSON
// rather than a Caddyfile: only JSON has header replacements (needed to
// build URL-encoded PEM and a hex serial), a matcher for "a certificate was
// presented", and a truststore file read whole (the Caddyfile's
// trusted_ca_cert_file keeps only its first certificate).
type Balancer struct{}

func (Balancer) Name() string  { return "caddy" }
func (Balancer) Image() string { return "mtlsconform/caddy:bookworm" }

// Packages: Caddy is one static binary; the image's sh and coreutils (which
// every image has) run the slot starter.
func (Balancer) Packages() string { return "caddy" }

func (Balancer) Command() []string {
	return []string{"caddy", "run", "--config", lb.ConfDir + "/" + caddyConfigFile}
}

// ReadyLog is empty: readiness is the harness's TLS-handshake poll.
func (Balancer) ReadyLog() string { return "" }

// Profile is how Caddy 2.6.2 (Debian bookworm, Go 1.19) behaved in the
// configuration Render gives, as the suite measured it. A caller without a
// certificate gets the contract's 400 page; every certificate Caddy
// rejects is refused in the handshake: a mixed refusal. Three deviations
// are narrowed to one scenario each, so the clause's other scenarios must
// still pass: C5's is an acceptance (no refusal to show), C13's and C18's
// concern only the untrusted caller in Optional mode.
func (Balancer) Profile() contract.Profile {
	return contract.Profile{
		Name: "reference-caddy",
		Description: "Caddy 2.6.2 (Debian bookworm) rendered from the reference configuration as JSON: " +
			"client_authentication verify_if_given, the 400 page for callers without a certificate, headers built with replacements",
		Refusal: contract.RefuseMixed,
		Deviations: []contract.Deviation{
			{Clause: "C5", Mode: contract.Mandatory, ScenarioID: "intermediate-only",
				Reason: "Caddy (Go's crypto/x509) takes every truststore certificate as a trust anchor: a truststore holding only " +
					"the intermediate accepts its leaves (200), where nginx/OpenSSL trusts nobody without the root"},
			{Clause: "C10", Mode: contract.Optional, Observed: contract.RefuseTLSAlert,
				Reason: "Caddy has no verification-status placeholder, so FAILED cannot be produced: verify_if_given refuses an " +
					"untrusted certificate in the handshake (\"bad certificate\"), and mode request would pass it on as if trusted"},
			{Clause: "C11", Mode: contract.Optional, Observed: contract.RefuseTLSAlert,
				Reason: "an expired certificate is refused in the handshake (\"bad certificate\") in Optional mode too: " +
					"Caddy cannot pass it on marked FAILED"},
			{Clause: "C13", Mode: contract.Optional, ScenarioID: "untrusted-claims-success", Observed: contract.RefuseTLSAlert,
				Reason: "an untrusted caller is refused in the handshake (\"bad certificate\") instead of reaching the backend " +
					"marked FAILED: what it forged never arrives, but nor does its request"},
			{Clause: "C18", Mode: contract.Optional, ScenarioID: "untrusted-smuggles-success", Observed: contract.RefuseTLSAlert,
				Reason: "an untrusted caller is refused in the handshake (\"bad certificate\") instead of reaching the backend " +
					"marked FAILED: none of its spellings arrives, but nor does its request"},
		},
	}
}

const (
	caddyConfigFile = "caddy.json"
	caddyTruststore = "truststore.pem"
	// caddyServerName and caddyPlainServer are the servers' keys in the
	// JSON; the mutations find what they edit under them.
	caddyServerName  = "mtls"
	caddyPlainServer = "plain"
	// Route ids ("@id" is Caddy's own way of naming a config object).
	caddyRouteStrip    = "strip-client-headers"
	caddyRoutePublic   = "public-host"
	caddyRouteCert     = "with-certificate"
	caddyRouteNoCert   = "without-certificate"
	caddyRouteRedirect = "redirect-to-https"
	// caddyRedirectHost is where the plain listener's redirect names the
	// TLS port; Slot moves that port with the listener.
	caddyRedirectHost = "https://{http.request.host}:"
	// TLS versions (C22), said out loud though they are Caddy's defaults.
	caddyTLSMin = "tls1.2"
	caddyTLSMax = "tls1.3"
)

// caddyNoCertPage is nginx's answer to a caller without a certificate,
// without nginx's signature: C1 asks for its title and text.
const caddyNoCertPage = "<html>\n<head><title>400 No required SSL certificate was sent</title></head>\n<body>\n" +
	"<center><h1>400 Bad Request</h1></center>\n<center>No required SSL certificate was sent</center>\n</body>\n</html>\n"

// The parts of Caddy's JSON configuration the renderer uses; field names
// are Caddy 2.6's.
type caddyConfig struct {
	Admin   caddyAdmin   `json:"admin"`
	Storage caddyStorage `json:"storage"`
	Apps    caddyApps    `json:"apps"`
}

// caddyAdmin turns the admin endpoint off and stops Caddy saving the
// running configuration to a home folder the container may not have.
type caddyAdmin struct {
	Disabled bool `json:"disabled"`
	Config   struct {
		Persist bool `json:"persist"`
	} `json:"config"`
}

type caddyStorage struct {
	Module string `json:"module"`
	Root   string `json:"root"`
}

type caddyApps struct {
	TLS  caddyTLSApp  `json:"tls"`
	HTTP caddyHTTPApp `json:"http"`
}

type caddyTLSApp struct {
	Certificates struct {
		LoadFiles []caddyCertFile `json:"load_files"`
	} `json:"certificates"`
	// The run's server certificate names no OCSP responder, but nothing
	// here may try the network.
	DisableOCSPStapling bool `json:"disable_ocsp_stapling"`
}

type caddyCertFile struct {
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
}

type caddyHTTPApp struct {
	Servers map[string]*caddyServer `json:"servers"`
}

type caddyServer struct {
	Listen    []string `json:"listen"`
	Protocols []string `json:"protocols"`
	// StrictSNIHost is written out on the TLS server: Caddy would turn it
	// on by itself (client auth is configured), and it is what refuses a
	// Host that is not the connection's SNI (421), so a connection made
	// for the public host, or made without SNI, never reaches the
	// protected host's routes (C20).
	StrictSNIHost         *bool            `json:"strict_sni_host,omitempty"`
	AutomaticHTTPS        caddyAutoHTTPS   `json:"automatic_https"`
	TLSConnectionPolicies []caddyTLSPolicy `json:"tls_connection_policies,omitempty"`
	Routes                []*caddyRoute    `json:"routes"`
}

type caddyAutoHTTPS struct {
	Disable bool `json:"disable"`
}

// caddyTLSPolicy is a TLS connection policy: the first whose match fits
// the ClientHello sets up the handshake.
type caddyTLSPolicy struct {
	Match                *caddyTLSMatch   `json:"match,omitempty"`
	ProtocolMin          string           `json:"protocol_min"`
	ProtocolMax          string           `json:"protocol_max"`
	ClientAuthentication *caddyClientAuth `json:"client_authentication,omitempty"`
	// DefaultSNI is the name whose certificate a handshake without SNI
	// gets. Without it Caddy looks for one naming the address the caller
	// dialled, and when the server certificate does not name it (a
	// container's address) fails the handshake ("internal error").
	DefaultSNI string `json:"default_sni,omitempty"`
}

type caddyTLSMatch struct {
	SNI []string `json:"sni"`
}

type caddyClientAuth struct {
	// TrustedCACertPEMFiles are read whole (every certificate of the
	// bundle), unlike the Caddyfile's trusted_ca_cert_file.
	TrustedCACertPEMFiles []string `json:"trusted_ca_certs_pem_files"`
	Mode                  string   `json:"mode"`
}

type caddyRoute struct {
	ID       string           `json:"@id"`
	Match    []map[string]any `json:"match,omitempty"`
	Handle   []any            `json:"handle"`
	Terminal bool             `json:"terminal,omitempty"`
}

type caddyHeadersHandler struct {
	Handler string          `json:"handler"` // "headers"
	Request *caddyHeaderOps `json:"request"`
}

type caddyProxyHandler struct {
	Handler   string          `json:"handler"` // "reverse_proxy"
	Upstreams []caddyUpstream `json:"upstreams"`
	Headers   struct {
		Request *caddyHeaderOps `json:"request,omitempty"`
	} `json:"headers"`
}

type caddyUpstream struct {
	Dial string `json:"dial"`
}

type caddyStaticResponse struct {
	Handler    string              `json:"handler"` // "static_response"
	StatusCode int                 `json:"status_code"`
	Headers    map[string][]string `json:"headers"`
	Body       string              `json:"body,omitempty"`
}

// caddyHeaderOps apply in Caddy's fixed order: add, set, delete, replace.
type caddyHeaderOps struct {
	Add     map[string][]string           `json:"add,omitempty"`
	Set     map[string][]string           `json:"set,omitempty"`
	Delete  []string                      `json:"delete,omitempty"`
	Replace map[string][]caddyReplacement `json:"replace,omitempty"`
}

// caddyReplacement is a substring (Search) or regular expression
// (SearchRegexp) replacement, applied in list order.
type caddyReplacement struct {
	Search       string `json:"search,omitempty"`
	SearchRegexp string `json:"search_regexp,omitempty"`
	Replace      string `json:"replace"`
}

// Placeholders of the presented leaf; they exist only when one was
// presented (without one Caddy leaves the text as it is).
const (
	caddyCertDER     = "{http.request.tls.client.certificate_der_base64}"
	caddyCertSubject = "{http.request.tls.client.subject}"
	caddyCertIssuer  = "{http.request.tls.client.issuer}"
	caddyFingerprint = "{http.request.tls.client.fingerprint}"
	// caddyCertSerial is the serial number in decimal.
	caddyCertSerial = "{http.request.tls.client.serial}"
)

// Render turns the typed configuration into caddy.json and its files.
func (Balancer) Render(c lb.Config, srv lb.ServerFiles) (lb.Rendered, error) {
	// Bad input is bad input first; then what this balancer cannot do.
	asked := c // what was asked for, before the defaults fill it in
	c, err := lb.Prepare(c)
	if err != nil {
		return lb.Rendered{}, err
	}
	// The depth as asked: any depth at all is one Caddy cannot honour.
	if len(bytes.TrimSpace(asked.CRL)) > 0 {
		return lb.Rendered{}, contract.Unsupported("Caddy 2.6 has no CRL option (it would accept a revoked certificate)")
	}
	if asked.OCSPResponder != "" {
		return lb.Rendered{}, contract.Unsupported("Caddy 2.6 checks no client certificate by OCSP (its client_authentication has no revocation option; OCSP is for stapling its own certificate)")
	}
	if asked.VerifyDepth != 0 {
		return lb.Rendered{}, contract.Unsupported("Caddy 2.6 has no verify-depth option (verify depth %d asked for)", asked.VerifyDepth)
	}
	hs, err := caddyScheme(c.Scheme)
	if err != nil {
		return lb.Rendered{}, err
	}
	cfg, err := caddyMutations().Apply("caddy", caddyRenderHeaders(c, hs), c)
	if err != nil {
		return lb.Rendered{}, err
	}
	text, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return lb.Rendered{}, fmt.Errorf("render caddy.json: %w", err)
	}
	text = append(text, '\n')
	r := lb.Rendered{
		Config: string(text),
		Files: map[string][]byte{
			caddyConfigFile:    text,
			"server-chain.pem": srv.Chain,
			"server.key":       srv.Key,
			caddyTruststore:    c.Truststore,
		},
	}
	r.Key = lb.HashFiles(r.Files)
	return r, nil
}

// caddyRender builds the configuration: a TLS server on 8443 and a plain
// one on 8088 that only redirects to it (C19). The TLS server picks its
// handshake by SNI: lb.PublicHost's asks for no certificate, every other
// (and none) asks for one and verifies it when given; strict_sni_host
// then holds each request's Host to that SNI (C20). Its routes: the first
// removes every copy of the contract headers the caller sent, in every
// spelling (C13, C18: Caddy passes on every header it does not set
// itself); the public host proxies with none; callers that presented a
// certificate (which verify_if_given has then verified) are proxied with
// SUCCESS and the identity headers; callers without one get the 400 page
// (Mandatory) or are proxied marked NONE (Optional). The headers and their
// encodings are the scheme's (scheme.go); the names here are the dlb's.
func caddyRender(c lb.Config) *caddyConfig {
	s, err := c.Scheme.WithCertHeader(c.CertHeader)
	if err != nil {
		panic(err)
	}
	hs, err := caddyScheme(s)
	if err != nil {
		panic(err)
	}
	return caddyRenderHeaders(c, hs)
}

// caddyRenderHeaders is caddyRender with the scheme rendered: a scheme's
// headers replace the dlb names below (caddyScheme).
func caddyRenderHeaders(c lb.Config, hs caddyHeaderSet) *caddyConfig {
	cfg := &caddyConfig{
		Storage: caddyStorage{Module: "file_system", Root: "/tmp/caddy"},
	}
	cfg.Admin.Disabled = true
	cfg.Apps.TLS.Certificates.LoadFiles = []caddyCertFile{{Certificate: lb.ConfDir + "/server-chain.pem", Key: lb.ConfDir + "/server.key"}}
	cfg.Apps.TLS.DisableOCSPStapling = true

	strip := &caddyHeadersHandler{Handler: "headers", Request: &caddyHeaderOps{Delete: hs.strip}}
	withCert := caddyProxy(nil)
	withCert.Headers.Request = hs.cert
	certHandlers := []any{withCert}
	if hs.prepare != nil {
		certHandlers = []any{&caddyHeadersHandler{Handler: "headers", Request: hs.prepare}, withCert}
	}
	noCert := []any{caddyNoCertRefusal()}
	if c.Mode == contract.Optional {
		noCert = []any{caddyProxy(hs.none)}
	}
	strict := true
	tlsPort := strings.TrimSuffix(lb.Port, "/tcp")

	cfg.Apps.HTTP.Servers = map[string]*caddyServer{
		caddyServerName: {
			Listen:         []string{":" + tlsPort},
			Protocols:      []string{"h1", "h2"},
			StrictSNIHost:  &strict,
			AutomaticHTTPS: caddyAutoHTTPS{Disable: true},
			TLSConnectionPolicies: []caddyTLSPolicy{
				{Match: &caddyTLSMatch{SNI: []string{lb.PublicHost}}, ProtocolMin: caddyTLSMin, ProtocolMax: caddyTLSMax},
				// lb.ServerName is the default host: a handshake without SNI
				// asks for a certificate too, and strict_sni_host then
				// answers its requests 421 (no SNI is not the Host).
				{ProtocolMin: caddyTLSMin, ProtocolMax: caddyTLSMax, DefaultSNI: lb.ServerName, ClientAuthentication: &caddyClientAuth{
					TrustedCACertPEMFiles: []string{lb.ConfDir + "/" + caddyTruststore},
					// verify_if_given, in both modes: a certificate that
					// is presented must verify (else the alert "bad
					// certificate"), and no certificate is left to the
					// routes. require_and_verify would refuse that caller
					// by alert too, losing C1's page.
					Mode: "verify_if_given",
				}},
			},
			Routes: []*caddyRoute{
				{ID: caddyRouteStrip, Handle: []any{strip}},
				{ID: caddyRoutePublic, Match: []map[string]any{{"host": []string{lb.PublicHost}}}, Handle: []any{caddyProxy(nil)}, Terminal: true},
				{ID: caddyRouteCert, Match: []map[string]any{caddyHasCertificate()}, Handle: certHandlers, Terminal: true},
				{ID: caddyRouteNoCert, Handle: noCert, Terminal: true},
			},
		},
		caddyPlainServer: {
			Listen:         []string{":" + strings.TrimSuffix(lb.PlainPort, "/tcp")},
			Protocols:      []string{"h1"},
			AutomaticHTTPS: caddyAutoHTTPS{Disable: true},
			Routes: []*caddyRoute{{ID: caddyRouteRedirect, Handle: []any{&caddyStaticResponse{
				Handler:    "static_response",
				StatusCode: http.StatusPermanentRedirect,
				Headers:    map[string][]string{"Location": {caddyRedirectHost + tlsPort + "{http.request.uri}"}},
			}}, Terminal: true}},
		},
	}
	return cfg
}

// caddyHasCertificate matches a request whose connection presented a
// client certificate: the fingerprint placeholder only resolves then
// (vars_regexp expands an unresolved placeholder to "").
func caddyHasCertificate() map[string]any {
	return map[string]any{"vars_regexp": map[string]any{
		caddyFingerprint: map[string]string{"pattern": "^[0-9a-f]{64}$"},
	}}
}

func caddyProxy(set map[string][]string) *caddyProxyHandler {
	p := &caddyProxyHandler{
		Handler:   "reverse_proxy",
		Upstreams: []caddyUpstream{{Dial: lb.BackendAlias + ":" + strings.TrimSuffix(lb.BackendPort, "/tcp")}},
	}
	if set != nil {
		p.Headers.Request = &caddyHeaderOps{Set: set}
	}
	return p
}

func caddyNoCertRefusal() *caddyStaticResponse {
	return &caddyStaticResponse{
		Handler:    "static_response",
		StatusCode: 400,
		Headers:    map[string][]string{"Content-Type": {"text/html"}},
		Body:       caddyNoCertPage,
	}
}

// caddyEscapedPEMFromDER turns the base64 DER Caddy offers into the PEM
// nginx's $ssl_client_escaped_cert gives, byte for byte (C14): Caddy's own
// certificate_pem placeholder carries raw newlines, which make the proxied
// request invalid (502). Lines are wrapped at 64 with a marker first,
// because the escapes lengthen what they replace; a marker after a last
// full line is dropped so no empty line appears.
func caddyEscapedPEMFromDER() []caddyReplacement { return caddyPEMFromDER(true) }

// caddyPEMFromDER is caddyEscapedPEMFromDER, or with escapeBase64 false
// the same PEM leaving the base64 characters + / = raw (AWS ALB's
// encoding): line breaks and spaces are still escaped.
func caddyPEMFromDER(escapeBase64 bool) []caddyReplacement {
	out := []caddyReplacement{
		{SearchRegexp: `.{64}`, Replace: `$0,`},
		{SearchRegexp: `,$`, Replace: ``},
	}
	if escapeBase64 {
		out = append(out,
			caddyReplacement{Search: `+`, Replace: `%2B`},
			caddyReplacement{Search: `/`, Replace: `%2F`},
			caddyReplacement{Search: `=`, Replace: `%3D`})
	}
	return append(out,
		caddyReplacement{Search: `,`, Replace: `%0A`},
		caddyReplacement{SearchRegexp: `^(.+)$`, Replace: `-----BEGIN%20CERTIFICATE-----%0A$1%0A-----END%20CERTIFICATE-----%0A`})
}

// caddyBase64 is the standard base64 alphabet, in value order.
const caddyBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// caddySerialFromDER reads the serial number out of the base64 DER as
// upper-case hex, as nginx's $ssl_client_serial has it: Caddy's serial
// placeholder is decimal, and it has no conversion. Replacements are all
// it has, so they decode: the first 64 base64 characters (48 bytes, which
// hold the serial of any certificate) become bits written as '.' and ':'
// (characters outside the alphabet, so no later step re-reads them), bits
// are grouped by four and each group becomes a hex digit, and a regular
// expression picks the serial's bytes out of
//
//	30 len  30 len  [a0 03 02 01 ver]  02 n <n bytes of serial> ...
//
// by its length byte n (1 to 32), dropping DER's sign byte 00.
func caddySerialFromDER() []caddyReplacement {
	out := []caddyReplacement{{SearchRegexp: `^(.{64}).*$`, Replace: `$1`}}
	bits := func(v, width int) string {
		s := fmt.Sprintf("%0*b", width, v)
		return strings.NewReplacer("0", ".", "1", ":").Replace(s)
	}
	for v, ch := range caddyBase64 {
		out = append(out, caddyReplacement{Search: string(ch), Replace: bits(v, 6)})
	}
	out = append(out, caddyReplacement{SearchRegexp: `[.:]{4}`, Replace: `$0|`})
	for v := range 16 {
		out = append(out, caddyReplacement{Search: bits(v, 4) + "|", Replace: strings.ToUpper(strconv.FormatInt(int64(v), 16))})
	}
	var alts, groups []string
	for n := 1; n <= 32; n++ {
		alts = append(alts, fmt.Sprintf("%02X(.{%d})", n, 2*n))
		groups = append(groups, fmt.Sprintf("$%d", n))
	}
	out = append(out,
		caddyReplacement{SearchRegexp: `^30(?:81..|82....)30(?:81..|82....)(?:A0030201..)?02(?:` + strings.Join(alts, "|") + `).*$`,
			Replace: strings.Join(groups, "")},
		caddyReplacement{SearchRegexp: `^00(..)`, Replace: `$1`},
	)
	return out
}

// Mutations are the ways the Caddy configuration can be broken on purpose.
func (Balancer) Mutations() map[string]string { return caddyMutations().Docs() }

// inPlace makes an edit of the typed configuration, which changes it where
// it is, a mutation's edit.
func inPlace(f func(cfg *caddyConfig, c lb.Config) error) lb.Edit[*caddyConfig] {
	return func(cfg *caddyConfig, c lb.Config) (*caddyConfig, error) { return cfg, f(cfg, c) }
}

func caddyMutations() lb.Mutations[*caddyConfig] {
	return lb.Mutations[*caddyConfig]{
		"optional-for-mandatory": {
			How: "marked NONE",
			Apply: inPlace(func(cfg *caddyConfig, c lb.Config) error {
				if c.Mode != contract.Mandatory {
					return nil
				}
				r, err := cfg.route(caddyRouteNoCert)
				if err != nil {
					return err
				}
				if _, err := handlerOf[*caddyStaticResponse](r); err != nil {
					return err
				}
				r.Handle = []any{caddyProxy(map[string][]string{contract.HeaderVerify: {"NONE"}})}
				return nil
			}),
		},
		"verify-required": {
			How: "require_and_verify",
			Apply: inPlace(func(cfg *caddyConfig, c lb.Config) error {
				if c.Mode != contract.Mandatory {
					return nil
				}
				return cfg.setClientAuthMode("verify_if_given", "require_and_verify")
			}),
		},
		"verify-nothing": {
			How: "client_authentication mode request",
			Apply: inPlace(func(cfg *caddyConfig, _ lb.Config) error {
				return cfg.setClientAuthMode("verify_if_given", "request")
			}),
		},
		"pass-client-verify": {
			How: "not stripped, and the balancer's value added after it",
			Apply: inPlace(func(cfg *caddyConfig, c lb.Config) error {
				strip, err := cfg.stripHandler()
				if err != nil {
					return err
				}
				others := []string{}
				for _, h := range []string{contract.HeaderDN, contract.HeaderIssuer, contract.HeaderSerial, c.WithDefaults().CertHeader} {
					others = append(others, contract.Spellings(h)...)
				}
				if slices.Equal(strip.Request.Delete, others) {
					return fmt.Errorf("route %s already lets %s through", caddyRouteStrip, contract.HeaderVerify)
				}
				strip.Request.Delete = others
				n := 0
				for _, p := range cfg.proxies() {
					v, ok := p.Headers.Request.Set[contract.HeaderVerify]
					if !ok {
						continue
					}
					delete(p.Headers.Request.Set, contract.HeaderVerify)
					if p.Headers.Request.Add == nil {
						p.Headers.Request.Add = map[string][]string{}
					}
					p.Headers.Request.Add[contract.HeaderVerify] = v
					n++
				}
				if n == 0 {
					return fmt.Errorf("no reverse_proxy sets %s", contract.HeaderVerify)
				}
				return nil
			}),
		},
		"exact-names-only": {
			How: "the strip route deletes the exact names",
			Apply: inPlace(func(cfg *caddyConfig, c lb.Config) error {
				strip, err := cfg.stripHandler()
				if err != nil {
					return err
				}
				exact := contract.ContractHeaders(c.WithDefaults().CertHeader)
				if slices.Equal(strip.Request.Delete, exact) {
					return fmt.Errorf("route %s already deletes only the exact names", caddyRouteStrip)
				}
				strip.Request.Delete = exact
				return nil
			}),
		},
		"plain-port-proxies": {
			Apply: inPlace(func(cfg *caddyConfig, _ lb.Config) error {
				srv, ok := cfg.Apps.HTTP.Servers[caddyPlainServer]
				if !ok {
					return fmt.Errorf("no server %q in the configuration", caddyPlainServer)
				}
				r, err := routeIn(srv, caddyPlainServer, caddyRouteRedirect)
				if err != nil {
					return err
				}
				if _, err := handlerOf[*caddyStaticResponse](r); err != nil {
					return err
				}
				r.Handle = []any{caddyProxy(nil)}
				return nil
			}),
		},
		"verify-by-sni": {
			How: "routed by SNI, strict_sni_host off",
			Apply: inPlace(func(cfg *caddyConfig, _ lb.Config) error {
				srv, ok := cfg.Apps.HTTP.Servers[caddyServerName]
				if !ok {
					return fmt.Errorf("no server %q in the configuration", caddyServerName)
				}
				if srv.StrictSNIHost == nil || !*srv.StrictSNIHost {
					return fmt.Errorf("strict_sni_host is already off")
				}
				r, err := cfg.route(caddyRoutePublic)
				if err != nil {
					return err
				}
				off := false
				srv.StrictSNIHost = &off
				r.Match = []map[string]any{{"vars_regexp": map[string]any{
					"{http.request.tls.server_name}": map[string]string{"pattern": "^" + regexp.QuoteMeta(lb.PublicHost) + "$"},
				}}}
				return nil
			}),
		},
		"cert-header-cut-at-8k": {
			How: "as a proxy hop with an 8 KiB header limit does",
			Apply: inPlace(func(cfg *caddyConfig, c lb.Config) error {
				p, err := cfg.certProxy()
				if err != nil {
					return err
				}
				name := c.WithDefaults().CertHeader
				reps, ok := p.Headers.Request.Replace[name]
				if !ok {
					return fmt.Errorf("the certificate header has no replacements to cut after")
				}
				// Go's regexp takes a repeat count of 1000 at most, nested
				// ones included: 8192 characters are counted in pieces.
				first8k := strings.Repeat(".{1000}", 8) + ".{192}"
				p.Headers.Request.Replace[name] = append(reps, caddyReplacement{SearchRegexp: `^(` + first8k + `).+$`, Replace: `$1`})
				return nil
			}),
		},
		"tls13-only": {
			How: "protocol_min tls1.3",
			Apply: inPlace(func(cfg *caddyConfig, _ lb.Config) error {
				srv, ok := cfg.Apps.HTTP.Servers[caddyServerName]
				if !ok {
					return fmt.Errorf("no server %q in the configuration", caddyServerName)
				}
				n := 0
				for i := range srv.TLSConnectionPolicies {
					if p := &srv.TLSConnectionPolicies[i]; p.ProtocolMin == caddyTLSMin {
						p.ProtocolMin = "tls1.3"
						n++
					}
				}
				if n == 0 {
					return fmt.Errorf("no TLS connection policy has protocol_min %s", caddyTLSMin)
				}
				return nil
			}),
		},
		"no-dn-header": {
			Apply: inPlace(func(cfg *caddyConfig, _ lb.Config) error {
				return cfg.unsetHeader(contract.HeaderDN)
			}),
		},
		"no-serial-header": {
			Apply: inPlace(func(cfg *caddyConfig, _ lb.Config) error {
				return cfg.unsetHeader(contract.HeaderSerial)
			}),
		},
		"decimal-serial": {
			How: "Caddy's own serial placeholder",
			Apply: inPlace(func(cfg *caddyConfig, _ lb.Config) error {
				p, err := cfg.certProxy()
				if err != nil {
					return err
				}
				if _, ok := p.Headers.Request.Replace[contract.HeaderSerial]; !ok {
					return fmt.Errorf("the serial header has no replacements to drop")
				}
				delete(p.Headers.Request.Replace, contract.HeaderSerial)
				p.Headers.Request.Set[contract.HeaderSerial] = []string{"{http.request.tls.client.serial}"}
				return nil
			}),
		},
		"cert-not-encoded": {
			How: "base64 DER as Caddy offers it",
			Apply: inPlace(func(cfg *caddyConfig, c lb.Config) error {
				p, err := cfg.certProxy()
				if err != nil {
					return err
				}
				if _, ok := p.Headers.Request.Replace[c.WithDefaults().CertHeader]; !ok {
					return fmt.Errorf("the certificate header has no replacements to drop")
				}
				delete(p.Headers.Request.Replace, c.WithDefaults().CertHeader)
				return nil
			}),
		},
	}
}

func (cfg *caddyConfig) route(id string) (*caddyRoute, error) {
	srv, ok := cfg.Apps.HTTP.Servers[caddyServerName]
	if !ok {
		return nil, fmt.Errorf("no server %q in the configuration", caddyServerName)
	}
	return routeIn(srv, caddyServerName, id)
}

func routeIn(srv *caddyServer, name, id string) (*caddyRoute, error) {
	for _, r := range srv.Routes {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("no route %q in server %q", id, name)
}

func (cfg *caddyConfig) stripHandler() (*caddyHeadersHandler, error) {
	r, err := cfg.route(caddyRouteStrip)
	if err != nil {
		return nil, err
	}
	return handlerOf[*caddyHeadersHandler](r)
}

// handlerOf finds the route's one handler of type H.
func handlerOf[H any](r *caddyRoute) (H, error) {
	for _, h := range r.Handle {
		if v, ok := h.(H); ok {
			return v, nil
		}
	}
	var zero H
	return zero, fmt.Errorf("route %s has no %T handler", r.ID, zero)
}

// proxies are the TLS server's reverse_proxy handlers that edit headers.
func (cfg *caddyConfig) proxies() []*caddyProxyHandler {
	var out []*caddyProxyHandler
	if srv, ok := cfg.Apps.HTTP.Servers[caddyServerName]; ok {
		for _, r := range srv.Routes {
			for _, h := range r.Handle {
				if p, ok := h.(*caddyProxyHandler); ok && p.Headers.Request != nil {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func (cfg *caddyConfig) certProxy() (*caddyProxyHandler, error) {
	r, err := cfg.route(caddyRouteCert)
	if err != nil {
		return nil, err
	}
	return handlerOf[*caddyProxyHandler](r)
}

// unsetHeader stops the balancer setting an identity header; the caller's
// copies are still removed, so the backend sees none.
func (cfg *caddyConfig) unsetHeader(name string) error {
	p, err := cfg.certProxy()
	if err != nil {
		return err
	}
	if _, ok := p.Headers.Request.Set[name]; !ok {
		return fmt.Errorf("route %s does not set %s", caddyRouteCert, name)
	}
	delete(p.Headers.Request.Set, name)
	delete(p.Headers.Request.Replace, name)
	return nil
}

func (cfg *caddyConfig) setClientAuthMode(from, to string) error {
	srv, ok := cfg.Apps.HTTP.Servers[caddyServerName]
	if !ok {
		return fmt.Errorf("no server %q in the configuration", caddyServerName)
	}
	n := 0
	for i := range srv.TLSConnectionPolicies {
		if ca := srv.TLSConnectionPolicies[i].ClientAuthentication; ca != nil && ca.Mode == from {
			ca.Mode = to
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no TLS connection policy has client authentication mode %s", from)
	}
	return nil
}

// Caddy serves every configuration of a run from one container: each is a
// slot, a Caddy process of its own running the rendered configuration on
// a port of its own. One process for all slots, reloaded through its admin
// endpoint, was measured and set aside: Caddy 2.6 rebinds every listener
// on each reload (SO_REUSEPORT) and closes the old sockets, which resets
// connections still queued on them, so requests to the other slots failed
// ("connection reset by peer") whenever a slot was added. A process per
// slot leaves the running slots alone, and shares nothing with them (TLS
// session ticket keys, certificate cache) that the rendered configuration
// running alone would not have to itself.
var _ lb.Multiplexed = Balancer{}

const (
	// caddyHostFile is what the container's main process runs: Render's
	// settings and no app, so it serves nothing; slots are processes of
	// their own, started by caddyStartFile.
	caddyHostFile  = "caddy-host.json"
	caddyStartFile = "start-slots.sh"
	// caddyRunDir holds, per slot, the started Caddy's pid and log.
	caddyRunDir = "/tmp/mtlsconform-slots"
)

// caddyStartScript starts a Caddy (caddy start: it returns once the
// process runs its configuration, or fails with what the process said)
// for every slot that has none yet, in parallel. Given "check", it starts
// nothing and says which slots have no running Caddy, and why.
const caddyStartScript = `#!/bin/sh
# Rendered by mtlsconform: each slot under slots/ is a Caddy of its own,
# running the slot's caddy.json; its pid and log are under ` + caddyRunDir + `/<slot>.
set -u
cd ` + lb.ConfDir + `
run=` + caddyRunDir + `
mkdir -p "$run"
status=0
if [ "${1-}" = check ]; then
	for conf in slots/*/caddy.json; do
		[ -f "$conf" ] || continue
		id=${conf#slots/}
		id=${id%/caddy.json}
		state=
		if pid=$(cat "$run/$id/pid" 2>/dev/null) && [ -r "/proc/$pid/stat" ]; then
			read -r _ _ state _ <"/proc/$pid/stat" || state=
		fi
		case $state in
		'' | Z | X) ;;
		*) continue ;;
		esac
		status=1
		echo "slot $id: no Caddy runs its configuration"
		caddy validate --config "$PWD/$conf" 2>&1 | grep -v '^{"level":"\(info\|warn\)"'
		if [ -f "$run/$id/log" ]; then
			echo "slot $id: what its log says besides info and warnings:"
			grep -v '^{"level":"\(info\|warn\)"' "$run/$id/log" | tail -n 5
		fi
	done
	exit $status
fi
started=
for conf in slots/*/caddy.json; do
	[ -f "$conf" ] || continue
	id=${conf#slots/}
	id=${id%/caddy.json}
	mkdir "$run/$id" 2>/dev/null || continue # started before
	caddy start --config "$PWD/$conf" --pidfile "$run/$id/pid" >"$run/$id/log" 2>&1 &
	started="$started $!:$id"
done
for job in $started; do
	if ! wait "${job%%:*}"; then
		id=${job#*:}
		echo "slot $id: Caddy did not start:"
		grep -v '^{"level":"\(info\|warn\)"' "$run/$id/log"
		status=1
	fi
done
exit $status
`

// caddyHost is the main process's configuration: Render's admin, storage
// and nothing else.
func caddyHost() any {
	r := caddyRender(lb.Config{Mode: contract.Mandatory}.WithDefaults())
	return struct {
		Admin   caddyAdmin   `json:"admin"`
		Storage caddyStorage `json:"storage"`
	}{r.Admin, r.Storage}
}

// HostFiles are the main process's configuration (no app: it serves
// nothing) and the script that starts the slots' processes.
func (Balancer) HostFiles() map[string][]byte {
	text, err := json.MarshalIndent(caddyHost(), "", "  ")
	if err != nil {
		panic(err) // fixed types: cannot fail
	}
	return map[string][]byte{
		caddyHostFile:  append(text, '\n'),
		caddyStartFile: []byte(caddyStartScript),
	}
}

func (Balancer) HostCommand() []string {
	return []string{"caddy", "run", "--config", lb.ConfDir + "/" + caddyHostFile}
}

// HostReadyLog is what caddy run prints once it runs its configuration.
func (Balancer) HostReadyLog() string { return "serving initial configuration" }

// Reload starts the new slots' processes; it fails when one does not
// start, saying why.
func (Balancer) Reload() lb.Reload {
	return lb.Reload{Exec: []string{"sh", lb.ConfDir + "/" + caddyStartFile}}
}

// ConfigTest names the slots no Caddy runs, with what caddy validate and
// their log say.
func (Balancer) ConfigTest() []string {
	return []string{"sh", lb.ConfDir + "/" + caddyStartFile, "check"}
}

// caddyListens is what Slot reads of a configuration: its servers'
// addresses.
type caddyListens struct {
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Listen []string `json:"listen"`
			} `json:"servers"`
		} `json:"http"`
	} `json:"apps"`
}

// caddyListensOn is every server's one address, keyed by the address; a
// server with more or fewer than one is an error.
func caddyListensOn(text string) (map[string]string, error) {
	var c caddyListens
	if err := json.Unmarshal([]byte(text), &c); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, s := range c.Apps.HTTP.Servers {
		if len(s.Listen) != 1 {
			return nil, fmt.Errorf("server %q listens on %q, want one address", name, s.Listen)
		}
		if other, dup := out[s.Listen[0]]; dup {
			return nil, fmt.Errorf("servers %q and %q both listen on %s", other, name, s.Listen[0])
		}
		out[s.Listen[0]] = name
	}
	return out, nil
}

// Slot is the rendered configuration, mutations included, as slot id:
// caddy.json and its files under slots/<id>/, the paths in it moved there,
// its TLS server listening on port and its plain server on
// port+lb.PlainPortOffset, with the redirect naming port. Nothing else
// changes.
func (Balancer) Slot(r lb.Rendered, id string, port int) (map[string][]byte, error) {
	tlsFrom, plainFrom := ":"+strings.TrimSuffix(lb.Port, "/tcp"), ":"+strings.TrimSuffix(lb.PlainPort, "/tcp")
	tlsTo, plainTo := ":"+strconv.Itoa(port), ":"+strconv.Itoa(port+lb.PlainPortOffset)
	listen, err := caddyListensOn(r.Config)
	if err != nil {
		return nil, fmt.Errorf("caddy slot %s: the rendered configuration: %w", id, err)
	}
	if len(listen) != 2 || listen[tlsFrom] == "" || listen[plainFrom] == "" {
		return nil, fmt.Errorf("caddy slot %s: want one server on %s and one on %s, got %v", id, tlsFrom, plainFrom, listen)
	}
	// The redirect is the one other place a port is named; a mutation may
	// have taken it away.
	redirectFrom, redirectTo := caddyRedirectHost+tlsFrom[1:]+"{", caddyRedirectHost+tlsTo[1:]+"{"
	moves := map[string]string{strconv.Quote(tlsFrom): strconv.Quote(tlsTo), strconv.Quote(plainFrom): strconv.Quote(plainTo)}
	if strings.Contains(r.Config, redirectFrom) {
		moves[redirectFrom] = redirectTo
	}
	text, err := lb.ReplaceOnce(r.Config, id, moves)
	if err != nil {
		return nil, fmt.Errorf("caddy %w", err)
	}
	dir := "slots/" + id
	text = strings.ReplaceAll(text, lb.ConfDir+"/", lb.ConfDir+"/"+dir+"/")
	if listen, err = caddyListensOn(text); err != nil || len(listen) != 2 || listen[tlsTo] == "" || listen[plainTo] == "" {
		return nil, fmt.Errorf("caddy slot %s: the slot's servers do not listen on %s and %s (%v, %v)", id, tlsTo, plainTo, listen, err)
	}
	files := map[string][]byte{dir + "/" + caddyConfigFile: []byte(text)}
	for name, data := range r.Files {
		if name != caddyConfigFile {
			files[dir+"/"+name] = data
		}
	}
	return files, nil
}
