package haproxy

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"mtlsconform/contract"
	"mtlsconform/lb"
)

// Balancer is Debian bookworm's HAProxy 2.6 configured to behave like an
// nginx-based client-certificate balancer (the DLB): it never fails the
// TLS handshake over a client certificate, and decides in the HTTP layer
// instead, so Mandatory mode can answer nginx's 400 pages and Optional
// mode can pass FAILED on. HAProxy's own way (verify required) refuses
// with a TLS alert, and its plain "verify optional" still aborts the
// handshake for a certificate that fails verification (measured with a
// revoked one); verify required is kept as a mutation, to show the suite
// tells the two apart.
type Balancer struct{}

func (Balancer) Name() string     { return "haproxy" }
func (Balancer) Image() string    { return "mtlsconform/haproxy:bookworm" }
func (Balancer) Packages() string { return "haproxy" }

// Command runs HAProxy in the foreground (-db) with the rendered file.
func (Balancer) Command() []string {
	return []string{"haproxy", "-db", "-f", lb.ConfDir + "/haproxy.cfg"}
}

// ReadyLog is empty: HAProxy prints nothing once it listens outside
// master-worker mode, so readiness is a TLS handshake.
func (Balancer) ReadyLog() string { return "" }

// Profile is HAProxy 2.6's with the reference configuration, as measured
// by the whole suite: it refuses with the 400 pages and follows the
// contract where nginx does not (an expired or revoked certificate in
// Optional mode passes as FAILED), so it knows no deviation. The verify
// depth scenarios are not supported (Render says so), not deviations.
func (Balancer) Profile() contract.Profile {
	return contract.Profile{
		Name: "reference-haproxy",
		Description: "HAProxy 2.6 (Debian bookworm, OpenSSL 3.0) rendered from the reference configuration: " +
			"verify optional with every verification error ignored, 400 pages answered by http-request return; " +
			"no verify-depth option",
		Refusal: contract.RefuseHTTP400,
	}
}

// Mutations are the ways the HAProxy configuration can be broken on purpose.
func (Balancer) Mutations() map[string]string { return haproxyMutations().Docs() }

// The two refusals of Mandatory mode, nginx's pages word for word. The
// order matters: ssl_c_verify is 0 when no certificate was sent, so only
// ssl_c_used tells a caller without one apart.
const (
	haproxyNoCertRule  = `http-request return status 400 content-type "text/html" string "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>No required SSL certificate was sent</center>\r\n</body>\r\n</html>\r\n" if !{ ssl_c_used }`
	haproxyBadCertRule = `http-request return status 400 content-type "text/html" string "<html>\r\n<head><title>400 The SSL certificate error</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The SSL certificate error</center>\r\n</body>\r\n</html>\r\n" if !{ ssl_c_verify 0 }`
	// haproxyVerifyIgnoringErrors keeps every certificate problem out of the
	// handshake: without the ignore lists HAProxy aborts it with an alert.
	haproxyVerifyIgnoringErrors = "verify optional ca-ignore-err all crt-ignore-err all"
	// haproxyEncodedCert is nginx's $ssl_client_escaped_cert without its
	// BEGIN/END lines, rebuilt from the DER: base64 wrapped at 64 with %0A,
	// then + / = percent-encoded so that form-decoding (WSO2) recovers the
	// PEM too. A sample expression, single-quoted: the commas and quotes of
	// regsub's arguments are its own.
	haproxyEncodedCert = `'ssl_c_der,base64,regsub("(.{1,64})","\1%0A",g),regsub("\+","%2B",g),regsub("/","%2F",g),regsub("=","%3D",g)'`
	// haproxyTLSVersions are said out loud (C22): both, and nothing older.
	haproxyTLSVersions = "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3"
	// haproxyRedirect sends a plain-HTTP caller to the same URL over TLS.
	haproxyRedirect = "http-request redirect location https://%[req.hdr(host),host_only]:8443%[capture.req.uri] code 301"
	// haproxyHostCheck refuses a request for the partner API on a
	// connection whose SNI chose the public host, which asked for no
	// certificate: 421, HTTP's answer to a request sent on a connection
	// that cannot serve it. Without it the partner API's own checks still
	// refuse (400) or mark the caller NONE (measured): it is the second lock.
	haproxyHostCheck = "http-request deny deny_status 421 if public_sni !public_host"
	haproxyRouting   = "use_backend publicapi if public_host"
)

// Buffers (C21). A certificate of a few hundred names makes a header of
// more than 16 KiB, and with HAProxy's default tune.bufsize of 16384 the
// header's encoding either failed, passing the header on as empty PEM
// armour, or the rewrite found no room and HAProxy answered 500 (both
// measured). 64 KiB buffers (two a stream: 128 KiB a connection instead
// of 32) with half of each reserved for rewrites: a client's request
// still may bring 32 KiB of headers, and the balancer may add 32 KiB, of
// which the certificate header takes up to 24 KiB (about 17 KiB of DER),
// each DN up to 2 KiB; anything bigger is refused by haproxyTooLarge.
const (
	haproxyBufSize    = 65536
	haproxyMaxRewrite = 32768
	haproxyCertMax    = 24576
	haproxyDNMax      = 2048
)

// haproxyGlobal is the process-wide part of haproxy.cfg, shared by a
// configuration on its own and by the shared balancer. One thread: a
// worker started per reload sized itself for the machine (an HAProxy run:
// 3.86-4.60 against 4.01-4.81 CPU-seconds, each of 4 interleaved pairs
// lower, same verdicts).
var haproxyGlobal = fmt.Sprintf(`global
    log stderr format raw local0 info
    nbthread 1
    tune.bufsize %d
    tune.maxrewrite %d

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client  30s
    timeout server  30s

`, haproxyBufSize, haproxyMaxRewrite)

var haproxyTemplate = template.Must(template.New("haproxy.cfg").Parse(`# Rendered by mtlsconform: HAProxy 2.6 as the reference mTLS load balancer ({{.Mode}} mode).
# The handshake never fails on a client certificate (verify optional, every
# error ignored): the outcome is read in the HTTP layer from ssl_c_used (was
# a certificate sent) and ssl_c_verify (0 when it verified, also when none
# was sent; unlike ssl_c_err it survives TLS session resumption).
# tune.bufsize and tune.maxrewrite make room for big certificates (C21).
{{.Global}}frontend mtls
    # crt-list.txt picks the TLS settings by SNI: the partner API
    # ({{.ServerName}}, also what a handshake without SNI or with another
    # name gets) asks for a client certificate as the options below say,
    # {{.PublicHost}} asks for none.
    bind :8443 ssl crt-list {{.Dir}}/crt-list.txt alpn h2,http/1.1 {{.TLSVersions}} ca-file {{.Dir}}/truststore.pem{{if .HasCRL}} crl-file {{.Dir}}/crl.pem{{end}} {{.Verify}}
    acl public_host req.hdr(host),host_only -i {{.PublicHost}}
    acl public_sni  ssl_fc_sni -i {{.PublicHost}}

    # HAProxy passes client-sent copies on unless told (C13), in every
    # spelling (C18): a backend that maps names to variables reads "_" as
    # "-". HAProxy keeps header names in lower case, so the patterns are.
{{- range .Strips}}
    http-request del-header {{.}} -m reg
{{- end}}

    # The host is the one the request names; the TLS settings were chosen
    # by SNI, so a request for the partner API on the public host's
    # connection skipped the certificate request (C20).
    {{.HostCheck}}
    {{.Routing}}
    default_backend productapi

# Plain HTTP only redirects to HTTPS (C19).
frontend plain
    bind :8088
    {{.Redirect}}

# The partner API: its refusals and its headers live with it, so that no
# other route to the backend inherits them.
backend productapi
{{- if .Mandatory}}
    # Mandatory: nginx's 400 pages, for no certificate and for any
    # verification error (untrusted, expired, not yet valid, wrong purpose,
    # revoked, a CA's CRL missing or expired).
    {{.NoCertRule}}
    {{.BadCertRule}}
{{end}}
    # The certificate header is encoded once, into a variable; a certificate
    # too big for the room the buffers leave is refused, never passed on
    # empty or cut (C21).
{{- range .Guards}}
    {{.}}
{{- end}}
{{range .Sets}}
    {{.}}
{{- end}}
    server productapi {{.Backend}}

# The public host: no certificate asked for, none forwarded; the callers'
# copies of the headers were dropped in the frontend.
backend publicapi
    server productapi {{.Backend}}
`))

// haproxyCrtList gives each host its TLS settings. The first line is the
// default (no SNI, or a name no line lists) and takes the bind line's
// options; a line cannot carry ca-ignore-err (2.6 refuses the keyword
// there), so the protected host cannot be the one with options of its
// own. The certificate is not also on the bind line (crt): measured, its
// entry took public.localhost from the certificate's names first, and the
// public host asked for a certificate again.
func haproxyCrtList() string {
	return "# Rendered by mtlsconform: the server certificate for each host, with the TLS settings that differ.\n" +
		lb.ConfDir + "/server.pem " + lb.ServerName + "\n" +
		lb.ConfDir + "/server.pem [verify none] " + lb.PublicHost + "\n"
}

// haproxyCertHeaders are the certificate headers a configuration strips:
// its own and the default name, since a gateway configured for that one
// must not read a caller's copy either.
func haproxyCertHeaders(c lb.Config) []string {
	if c.CertHeader == "" || strings.EqualFold(c.CertHeader, contract.DefaultCertHeader) {
		return []string{contract.DefaultCertHeader}
	}
	return []string{contract.DefaultCertHeader, c.CertHeader}
}

// haproxySpelled is a del-header pattern for every spelling of a header
// name: lower case, "-" or "_" at each dash or underscore. Names hold only
// letters, digits, - _ and . (lb.Token).
func haproxySpelled(name string, whole bool) string {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range strings.ToLower(name) {
		switch r {
		case '-', '_':
			b.WriteString("[-_]")
		case '.':
			b.WriteString("[.]")
		default:
			b.WriteRune(r)
		}
	}
	if whole {
		b.WriteString("$")
	}
	return b.String()
}

// Render turns the typed configuration into haproxy.cfg and its files:
// HAProxy wants the server chain and key in one file.
func (Balancer) Render(c lb.Config, srv lb.ServerFiles) (lb.Rendered, error) {
	// Bad input is bad input first; then what this balancer cannot do.
	asked := c // what was asked for, before the defaults fill it in
	c, err := lb.Prepare(c)
	if err != nil {
		return lb.Rendered{}, err
	}
	if asked.OCSPResponder != "" {
		return lb.Rendered{}, contract.Unsupported("HAProxy 2.6 checks no client certificate by OCSP (its OCSP support staples responses for its own certificate; client revocation is crl-file only)")
	}
	if asked.VerifyDepth != 0 {
		// HAProxy 2.6 has no bind option for it, and rendering without
		// one would pass a depth scenario by accident or fail it unfairly.
		return lb.Rendered{}, contract.Unsupported("HAProxy 2.6 has no verify-depth option (verify depth %d asked for)", asked.VerifyDepth)
	}
	// The scheme's certificate header before the team renamed it is
	// stripped too.
	hs, err := haproxySchemeHeaders(c.Scheme, asked.WithDefaults().Scheme.Cert.Header)
	if err != nil {
		return lb.Rendered{}, err
	}
	var b strings.Builder
	err = haproxyTemplate.Execute(&b, map[string]any{
		"Mode":        c.Mode,
		"Mandatory":   c.Mode == contract.Mandatory,
		"Global":      haproxyGlobal,
		"Dir":         lb.ConfDir,
		"ServerName":  lb.ServerName,
		"PublicHost":  lb.PublicHost,
		"TLSVersions": haproxyTLSVersions,
		"Verify":      haproxyVerifyIgnoringErrors,
		"HasCRL":      len(c.CRL) > 0,
		"Strips":      hs.strips,
		"HostCheck":   haproxyHostCheck,
		"Routing":     haproxyRouting,
		"Redirect":    haproxyRedirect,
		"NoCertRule":  haproxyNoCertRule,
		"BadCertRule": haproxyBadCertRule,
		"Guards":      hs.guards,
		"Sets":        hs.sets,
		"Backend":     lb.BackendAlias + ":" + strings.TrimSuffix(lb.BackendPort, "/tcp"),
	})
	if err != nil {
		return lb.Rendered{}, fmt.Errorf("render haproxy.cfg: %w", err)
	}
	conf := b.String()
	conf, err = haproxyMutations().Apply("haproxy", conf, c)
	if err != nil {
		return lb.Rendered{}, err
	}
	serverPEM := append([]byte(nil), srv.Chain...)
	if len(serverPEM) > 0 && serverPEM[len(serverPEM)-1] != '\n' {
		serverPEM = append(serverPEM, '\n')
	}
	serverPEM = append(serverPEM, srv.Key...)
	return lb.Text("haproxy.cfg", conf, c, map[string][]byte{"server.pem": serverPEM, "crt-list.txt": []byte(haproxyCrtList())}), nil
}

func haproxyMutations() lb.Mutations[string] {
	verifySet := "http-request set-header " + contract.HeaderVerify + " FAILED  if { ssl_c_used } !{ ssl_c_verify 0 }\n"
	sslStrip := "    http-request del-header " + haproxySpelled("X-SSL-", false) + " -m reg\n"
	return lb.Mutations[string]{
		"optional-for-mandatory": {
			How: "without its two 400 rules, as Optional mode renders it: untrusted callers pass too (marked FAILED)",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Chain(
				lb.Replace("    "+haproxyNoCertRule+"\n", ""),
				lb.Replace("    "+haproxyBadCertRule+"\n", ""),
			)),
		},
		"ssl-c-verify-only": {
			How:   "refused on ssl_c_verify alone, which is 0 when no certificate was sent",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Replace("    "+haproxyNoCertRule+"\n", "")),
		},
		"verify-required": {
			How:   "verify required, no ignored errors: every refusal is an alert",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Replace(" "+haproxyVerifyIgnoringErrors+"\n", " verify required\n")),
		},
		"pass-client-verify": {
			How: "kept aside before the headers are stripped, put back after",
			Apply: lb.Chain(
				lb.Replace(sslStrip, "    http-request set-var(txn.client_verify) req.hdr("+contract.HeaderVerify+")\n"+sslStrip),
				lb.Replace(verifySet, verifySet+"    http-request set-header "+contract.HeaderVerify+" %[var(txn.client_verify)] if { var(txn.client_verify) -m found }\n"),
			),
		},
		"no-dn-header": {
			Apply: lb.Replace("    http-request set-header "+contract.HeaderDN+" %[ssl_c_s_dn(,0,rfc2253)] if { ssl_c_used }\n", ""),
		},
		"no-serial-header": {
			Apply: lb.Replace("    http-request set-header "+contract.HeaderSerial+" %[ssl_c_serial,hex] if { ssl_c_used }\n", ""),
		},
		"cert-not-encoded": {
			How:   "only the line breaks encoded, base64's + / = left raw: form-decoding (WSO2) turns every + into a space",
			Apply: lb.Replace(`,regsub("\+","%2B",g),regsub("/","%2F",g),regsub("=","%3D",g)`, ""),
		},
		"exact-names-only": {
			How: "del-header X-SSL- -m beg and del-header of the certificate header, as first rendered",
			Apply: func(conf string, c lb.Config) (string, error) {
				steps := []lb.Edit[string]{lb.Replace(sslStrip, "    http-request del-header X-SSL- -m beg\n")}
				for _, name := range haproxyCertHeaders(c) {
					steps = append(steps, lb.Replace("    http-request del-header "+haproxySpelled(name, true)+" -m reg\n", "    http-request del-header "+name+"\n"))
				}
				return lb.Chain(steps...)(conf, c)
			},
		},
		"plain-port-proxies": {
			How:   "as for health checks: callers' copies are stripped on the TLS frontend only",
			Apply: lb.Replace("    "+haproxyRedirect+"\n", "    default_backend productapi\n"),
		},
		"verify-by-sni": {
			How: "use_backend by the SNI, and no 421",
			Apply: lb.Chain(
				lb.Replace("    "+haproxyHostCheck+"\n", ""),
				lb.Replace(haproxyRouting, "use_backend publicapi if public_sni"),
			),
		},
		"cert-header-cut-at-8k": {
			How:   "bytes(0,8192), as a team does to stay under a backend's header limit",
			Apply: lb.Replace(`regsub("=","%3D",g)'`, `regsub("=","%3D",g),bytes(0,8192)'`),
		},
		"tls13-only": {
			How:   "ssl-min-ver TLSv1.3",
			Apply: lb.Replace(haproxyTLSVersions, "ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3"),
		},
		"crl-ignored": {
			Apply: func(conf string, c lb.Config) (string, error) {
				if len(c.CRL) == 0 {
					return conf, nil // nothing to ignore in a configuration without CRLs
				}
				return lb.Replace(" crl-file "+lb.ConfDir+"/crl.pem", "")(conf, c)
			},
		},
	}
}

// HAProxy serves every configuration of a run from one master-worker
// process: each is a slot, a frontend and backend of their own in
// slots/<id>.cfg, and a reload (SIGUSR2 to the master) brings a new one up.
var _ lb.Multiplexed = Balancer{}

func (Balancer) HostFiles() map[string][]byte {
	return map[string][]byte{
		"host.cfg": []byte("# Rendered by mtlsconform: HAProxy 2.6 as the reference mTLS load balancer shared by a run.\n" +
			"# Every configuration is a slot in slots/, added by a reload.\n" + haproxyGlobal),
		// -f reads the folder's *.cfg files, so it has to exist.
		"slots/README": []byte("One frontend and backend per configuration, <id>.cfg, and its files under <id>/.\n"),
	}
}

// HostCommand runs HAProxy in master-worker mode (-W), which reloads on
// SIGUSR2, reading the host file and every slot.
func (Balancer) HostCommand() []string {
	return []string{"haproxy", "-W", "-db", "-f", lb.ConfDir + "/host.cfg", "-f", lb.ConfDir + "/slots"}
}
func (Balancer) HostReadyLog() string { return "Loading success." }
func (Balancer) Reload() lb.Reload    { return lb.Reload{Signal: "USR2"} }
func (Balancer) ConfigTest() []string {
	return []string{"haproxy", "-c", "-f", lb.ConfDir + "/host.cfg", "-f", lb.ConfDir + "/slots"}
}

// haproxyProxyName finds the names of a configuration's frontends and
// backends, where they are declared and where they are used: a slot gives
// them its own.
var haproxyProxyName = regexp.MustCompile(`(?m)^((?:frontend|backend) |\s+(?:default_backend|use_backend) )(\w+)`)

// Slot moves the rendered frontends and backends, mutations included, into
// slot id: its own names, its ports, its files (crt-list.txt names the
// server certificate by path too).
func (Balancer) Slot(r lb.Rendered, id string, port int) (map[string][]byte, error) {
	const frontend = "\nfrontend mtls\n"
	start := strings.Index(r.Config, frontend)
	if start < 0 {
		return nil, fmt.Errorf("haproxy slot %s: the rendered configuration has no frontend", id)
	}
	body, err := lb.ReplaceOnce(lb.InSlot(r.Config[start+1:], id), id, map[string]string{
		"bind :8443 ":  fmt.Sprintf("bind :%d ", port),
		"bind :8088\n": fmt.Sprintf("bind :%d\n", port+lb.PlainPortOffset),
	})
	if err != nil {
		return nil, err
	}
	// A mutation may have replaced the redirect.
	body = strings.ReplaceAll(body, "]:8443%[", fmt.Sprintf("]:%d%%[", port))
	body = haproxyProxyName.ReplaceAllString(body, "${1}${2}_"+id)
	files := lb.SlotFiles(r, "haproxy.cfg", id)
	files["slots/"+id+"/crt-list.txt"] = []byte(lb.InSlot(string(r.Files["crt-list.txt"]), id))
	files["slots/"+id+".cfg"] = []byte("# Slot " + id + " of the shared balancer.\n" + body)
	return files, nil
}

// HAProxy runs a configuration changed in place (C23) as a daemon of its
// own beside the shared balancer, reloaded the way HAProxy without a
// master documents: a new process told to finish the old one (-sf).
var _ lb.Separate = Balancer{}

func (Balancer) Separate(slot map[string][]byte, id string) (map[string][]byte, []string, []string, error) {
	cfg, ok := slot["slots/"+id+".cfg"]
	if !ok {
		return nil, nil, nil, fmt.Errorf("haproxy slot %s has no %s.cfg", id, id)
	}
	files := lb.MoveSlot(slot, id)
	dir := lb.ConfDir + "/" + lb.OwnDir(id)
	files[lb.OwnDir(id)+"/slot.cfg"] = []byte(strings.ReplaceAll(string(cfg), lb.ConfDir+"/slots/"+id+"/", dir+"/"))
	// A daemon has no stderr to log to.
	files[lb.OwnDir(id)+"/global.cfg"] = []byte("# Rendered by mtlsconform: slot " + id + " as a balancer process of its own.\n" +
		strings.Replace(strings.Replace(haproxyGlobal, "    log stderr format raw local0 info\n", "", 1), "    log global\n", "", 1))
	pid := "/tmp/haproxy-" + id + ".pid"
	cmd := "haproxy -D -p " + pid + " -f " + dir + "/global.cfg -f " + dir + "/slot.cfg"
	return files, []string{"sh", "-c", cmd}, []string{"sh", "-c", cmd + " -sf $(cat " + pid + ")"}, nil
}
