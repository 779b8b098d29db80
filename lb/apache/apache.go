package apache

import (
	"fmt"
	"strings"
	"text/template"

	"mtlsconform/contract"
	"mtlsconform/lb"
)

// Balancer is Debian bookworm's Apache httpd 2.4 with mod_ssl, configured to
// come as close to an nginx-based client-certificate balancer (the DLB) as
// mod_ssl allows: the handshake tolerates a missing or untrusted
// certificate (optional_no_ca) and Mandatory mode answers those callers
// with a 400 page from mod_rewrite. Every other verification error
// (expired, not yet valid, wrong purpose, revoked, a CA's CRL missing or
// expired, a chain that reaches no root or is too long) is fatal inside
// mod_ssl's verify callback, whatever the mode: those callers get a TLS
// alert, which the profile lists. Beside the partner API it serves a
// public host on the same port (no client certificate) and a plain port
// that redirects, both with HTTP/2 where TLS is spoken (mod_http2). Render
// answers contract.ErrNotSupported only for a header scheme mod_ssl and
// mod_headers cannot write (see scheme.go).
type Balancer struct{}

func (Balancer) Name() string     { return "apache" }
func (Balancer) Image() string    { return "mtlsconform/apache:bookworm" }
func (Balancer) Packages() string { return "apache2" }

// Command runs Debian's binary directly: apache2ctl would read
// /etc/apache2/envvars, and the rendered httpd.conf names every path
// itself instead.
func (Balancer) Command() []string {
	return []string{"apache2", "-DFOREGROUND", "-f", lb.ConfDir + "/httpd.conf"}
}

// ReadyLog is empty: readiness is a TLS handshake, which says more than
// any line httpd logs.
func (Balancer) ReadyLog() string { return "" }

// Profile is Apache 2.4's with the reference configuration, as measured
// by the whole suite. mod_ssl's verify callback forgives only a missing or
// unknown issuer under optional_no_ca (self-signed, unknown CA), which the
// 400 page answers; every other verification error (expired, not yet
// valid, wrong purpose, revoked, a chain that reaches no root or is too
// long, a CA without a CRL, an expired CRL) aborts the handshake before
// any HTTP is spoken, in either mode: a mixed refusal. In Optional mode
// that keeps expired and revoked callers from reaching the backend marked
// FAILED. The alerts named are as Go's client reports them.
func (Balancer) Profile() contract.Profile {
	return contract.Profile{
		Name: "reference-apache",
		Description: "Apache httpd 2.4 with mod_ssl (Debian bookworm, OpenSSL 3.0) rendered from the reference configuration: " +
			"SSLVerifyClient optional_no_ca, the 400 page from mod_rewrite for callers without a trusted certificate",
		Refusal: contract.RefuseMixed,
		Deviations: []contract.Deviation{
			{Clause: "C11", Mode: contract.Optional, Observed: contract.RefuseTLSAlert,
				Reason: "mod_ssl refuses an expired certificate in the handshake (alert \"expired certificate\") even with optional_no_ca: " +
					"the request never reaches the backend, where the contract wants it passed with FAILED"},
			{Clause: "C15", Mode: contract.Optional, Observed: contract.RefuseTLSAlert,
				Reason: "mod_ssl refuses a revoked certificate in the handshake (alert \"revoked certificate\") even with optional_no_ca: " +
					"the request never reaches the backend, where the contract wants it passed with FAILED"},
			{Clause: "C23", Mode: contract.Optional, Observed: contract.RefuseTLSAlert,
				Reason: "mod_ssl refuses a certificate revoked by the new CRL in the handshake even with optional_no_ca, as one revoked at start (C15)"},
			{Clause: "C24", Mode: contract.Optional, Observed: contract.RefuseTLSAlert,
				Reason: "mod_ssl refuses a certificate its OCSP responder calls revoked in the handshake even with optional_no_ca, as one a CRL revokes (C15)"},
		},
	}
}

// Mutations are the ways the Apache configuration can be broken on purpose.
func (Balancer) Mutations() map[string]string { return apacheMutations().Docs() }

const (
	// apacheRefusal is Mandatory mode's answer to a caller without a
	// trusted certificate. optional_no_ca lets a caller without a
	// certificate, or with one of an unknown issuer, finish the handshake;
	// mod_rewrite then answers 400 with the page that fits (the reason
	// travels in an environment variable to ErrorDocument).
	apacheRefusal = `    RewriteEngine on
    RewriteCond %{SSL:SSL_CLIENT_VERIFY} =NONE
    RewriteRule ^ - "[E=MTLS_REFUSAL:No required SSL certificate was sent,R=400,L]"
    RewriteCond %{SSL:SSL_CLIENT_VERIFY} !=SUCCESS
    RewriteRule ^ - "[E=MTLS_REFUSAL:The SSL certificate error,R=400,L]"
`
)

// apacheBackend is where every virtual host proxies to.
var apacheBackend = lb.BackendAlias + ":" + strings.TrimSuffix(lb.BackendPort, "/tcp")

// apacheEncodeCert finishes C14's encoding: escape() percent-encodes the
// PEM's line breaks and spaces but leaves base64's + / = raw, and a gateway
// that form-decodes the header (WSO2) would turn every + into a space.
// mod_headers' edit* replaces every match; %% is a literal percent in its
// format strings.
func apacheEncodeCert(header string) string {
	return "    RequestHeader edit* " + header + ` "\+" "%%2B"` + "\n" +
		"    RequestHeader edit* " + header + ` "/" "%%2F"` + "\n" +
		"    RequestHeader edit* " + header + ` "=" "%%3D"` + "\n"
}

// apacheServer is the server-wide part of httpd.conf, shared by a
// configuration on its own and by the shared balancer.
const apacheServer = `ServerRoot {{.Dir}}
ServerName localhost
DefaultRuntimeDir /tmp
PidFile /tmp/httpd.pid
Mutex file:/tmp default
# The container starts as root (to read the key); the workers drop to the
# user Debian's package creates.
User www-data
Group www-data
ErrorLog /dev/stderr
LogLevel warn
ServerTokens Prod
ServerSignature Off
TraceEnable Off

# log_config and unixd are built into Debian's binary.
LoadModule mpm_event_module   /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module  /usr/lib/apache2/modules/mod_authz_core.so
LoadModule headers_module     /usr/lib/apache2/modules/mod_headers.so
LoadModule rewrite_module     /usr/lib/apache2/modules/mod_rewrite.so
LoadModule proxy_module       /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module  /usr/lib/apache2/modules/mod_proxy_http.so
LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
LoadModule ssl_module         /usr/lib/apache2/modules/mod_ssl.so
LoadModule http2_module       /usr/lib/apache2/modules/mod_http2.so

`

var apacheTemplate = template.Must(template.New("httpd.conf").Parse(`# Rendered by mtlsconform: Apache httpd 2.4 (mod_ssl) as the reference mTLS load balancer ({{.Mode}} mode).
# Debian's apache2 is started directly, without apache2ctl and its envvars
# or the a2enmod layout: every path and module it needs is named here, and
# what it writes at run time goes to /tmp.
` + apacheServer + `Listen 8443
Listen 8088
SSLSessionCache shmcb:/tmp/ssl_scache(512000)

# The partner API, asking for client certificates. The first virtual host
# of the port is its default: a handshake without SNI, or with a name no
# host has, gets this one. mod_ssl answers 421 to a request whose Host
# names one of the two hosts on a connection made for the other (by SNI,
# or by default without SNI): their TLS settings differ, so it neither
# serves it nor renegotiates, over HTTP/1.1 and HTTP/2, TLS 1.2 and 1.3.
<VirtualHost *:8443>
    ServerName {{.ServerName}}
    Protocols h2 http/1.1
    SSLEngine on
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    SSLCertificateFile    {{.Dir}}/server-chain.pem
    SSLCertificateKeyFile {{.Dir}}/server.key

    # optional_no_ca in both modes: with "require" every refusal is a TLS
    # alert, and "optional" aborts an untrusted certificate too.
    SSLCACertificateFile  {{.Dir}}/truststore.pem
    SSLVerifyClient       optional_no_ca
    # mod_ssl counts the trust anchor against the depth, OpenSSL (nginx)
    # does not: one more lets as many intermediates through as nginx does.
    SSLVerifyDepth        {{.SSLVerifyDepth}}
{{- if .HasCRL}}
    SSLCARevocationFile   {{.Dir}}/crl.pem
{{- if .Mandatory}}
    # "chain" wants a CRL for every CA in the chain, as nginx does. Not
    # no_crl_for_cert_ok: it would accept a certificate whose CA has no CRL
    # in the bundle. The price: an untrusted caller (no CRL for its unknown
    # CA) gets an alert here instead of the 400 page.
    SSLCARevocationCheck  chain
{{- else}}
    # Optional mode: without no_crl_for_cert_ok an untrusted caller (no CRL
    # for its unknown CA) gets an alert instead of passing as FAILED; the
    # price is that a CA missing from the bundle goes unchecked.
    SSLCARevocationCheck  chain no_crl_for_cert_ok
{{- end}}
{{- end}}
{{- if .OCSP}}
    # Each client certificate (the leaf) is checked with this OCSP
    # responder, whatever URL the certificate names; no good answer, no
    # entry (C24). The responder serves responses signed beforehand (as
    # most CAs' do), which cannot echo a nonce.
    SSLOCSPEnable             leaf
    SSLOCSPDefaultResponder   {{.OCSP}}
    SSLOCSPOverrideResponder  on
    SSLOCSPUseRequestNonce    off
    SSLOCSPResponderTimeout   5
{{- end}}
{{- if .Mandatory}}

    # Mandatory mode: callers without a trusted certificate get a 400 page
    # (any other 400 of httpd's own gets the same page without a reason).
{{.Refusal}}    ErrorDocument 400 "<html><head><title>400 Bad Request</title></head><body><center><h1>400 Bad Request</h1></center><center>%{reqenv:MTLS_REFUSAL}</center></body></html>"
{{- end}}

    # Client-sent copies never reach the backend (C13, C18); a header whose
    # condition does not hold below is then absent. "unset" takes one exact
    # name (in any letter case), so every "-"/"_" spelling is named: a
    # CGI-style backend reads X_SSL_Client_DN as X-SSL-Client-DN.
{{.Strip}}
{{.Headers}}
    ProxyPass        / http://{{.Backend}}/
    ProxyPassReverse / http://{{.Backend}}/
</VirtualHost>

# A public host on the same port, without client certificates (C20): it
# reaches the backend with every contract header dropped.
<VirtualHost *:8443>
    ServerName {{.PublicHost}}
    Protocols h2 http/1.1
    SSLEngine on
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    SSLCertificateFile    {{.Dir}}/server-chain.pem
    SSLCertificateKeyFile {{.Dir}}/server.key
    SSLVerifyClient       none

    # Every spelling of every contract header goes (C13, C18).
{{.Strip}}
    ProxyPass        / http://{{.Backend}}/
    ProxyPassReverse / http://{{.Backend}}/
</VirtualHost>

# Plain HTTP only redirects to HTTPS, for the name the caller asked for
# (C19).
<VirtualHost *:8088>
    ServerName {{.ServerName}}
    RewriteEngine on
    RewriteRule ^ https://%{SERVER_NAME}:8443%{REQUEST_URI} [R=301,L]
</VirtualHost>
`))

// Render turns the typed configuration into httpd.conf and its files,
// with the run's server certificate chain and key.
func (Balancer) Render(c lb.Config, srv lb.ServerFiles) (lb.Rendered, error) {
	c, err := lb.Prepare(c)
	if err != nil {
		return lb.Rendered{}, err
	}
	headers, err := apacheHeaders(c.Scheme)
	if err != nil {
		return lb.Rendered{}, err
	}
	var b strings.Builder
	err = apacheTemplate.Execute(&b, map[string]any{
		"Mode":           c.Mode,
		"Mandatory":      c.Mode == contract.Mandatory,
		"Dir":            lb.ConfDir,
		"SSLVerifyDepth": c.VerifyDepth + 1,
		"HasCRL":         len(c.CRL) > 0,
		"OCSP":           c.OCSPResponder,
		"Refusal":        apacheRefusal,
		"Headers":        headers,
		"Strip":          apacheUnset(apacheStripped(c.Scheme), true),
		"ServerName":     lb.ServerName,
		"PublicHost":     lb.PublicHost,
		"Backend":        apacheBackend,
	})
	if err != nil {
		return lb.Rendered{}, fmt.Errorf("render httpd.conf: %w", err)
	}
	conf := b.String()
	conf, err = apacheMutations().Apply("apache", conf, c)
	if err != nil {
		return lb.Rendered{}, err
	}
	return lb.Text("httpd.conf", conf, c, srv.Files()), nil
}

// apacheUnset removes each name, and with spellings every "-"/"_" variant
// of it: mod_headers matches exact names only, ignoring letter case.
func apacheUnset(names []string, spellings bool) string {
	var b strings.Builder
	for _, n := range names {
		variants := []string{n}
		if spellings {
			variants = contract.Spellings(n)
		}
		for _, v := range variants {
			b.WriteString("    RequestHeader unset " + v + "\n")
		}
	}
	return b.String()
}

func apacheMutations() lb.Mutations[string] {
	failedLine := `RequestHeader set ` + contract.HeaderVerify + ` FAILED  "expr=`
	return lb.Mutations[string]{
		"optional-for-mandatory": {
			How:   "without its 400 rules, as Optional mode renders it: untrusted callers pass too (marked FAILED)",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Replace(apacheRefusal, "")),
		},
		"verify-required": {
			How:   "SSLVerifyClient require, Apache's own way: every refusal is an alert",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Replace("SSLVerifyClient       optional_no_ca", "SSLVerifyClient       require")),
		},
		"different-400-text": {
			How:   "the ErrorDocument says something else",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Replace("E=MTLS_REFUSAL:No required SSL certificate was sent", "E=MTLS_REFUSAL:Client certificate problem")),
		},
		"unmapped-failed": {
			How:   "mod_ssl's FAILED:<reason> (or GENEROUS)",
			Apply: lb.Replace(failedLine, `RequestHeader set `+contract.HeaderVerify+` "%{SSL_CLIENT_VERIFY}s" "expr=`),
		},
		"pass-client-verify": {
			How: "not stripped, and only set where the client sent none",
			Apply: lb.Chain(
				lb.Replace("    RequestHeader unset "+contract.HeaderVerify+"\n", ""),
				replaceEvery("RequestHeader set "+contract.HeaderVerify+" ", "RequestHeader setifempty "+contract.HeaderVerify+" ", 3),
			),
		},
		"no-dn-header": {
			Apply: lb.Replace(`    RequestHeader set `+contract.HeaderDN+` "%{SSL_CLIENT_S_DN}s" "expr=-n %{SSL_CLIENT_CERT}"`+"\n", ""),
		},
		"no-serial-header": {
			Apply: lb.Replace(`    RequestHeader set `+contract.HeaderSerial+` "%{SSL_CLIENT_M_SERIAL}s" "expr=-n %{SSL_CLIENT_CERT}"`+"\n", ""),
		},
		"cert-not-encoded": {
			How: "escape()'s output alone, base64's + / = raw: form-decoding (WSO2) turns every + into a space",
			Apply: func(conf string, c lb.Config) (string, error) {
				return lb.Replace(apacheEncodeCert(c.WithDefaults().CertHeader), "")(conf, c)
			},
		},
		"exact-names-only": {
			How: "one RequestHeader unset per header",
			Apply: func(conf string, c lb.Config) (string, error) {
				names := apacheStripped(c.WithDefaults().Scheme)
				return replaceEvery(apacheUnset(names, true), apacheUnset(names, false), 2)(conf, c)
			},
		},
		"plain-port-proxies": {
			Apply: lb.Replace("    RewriteEngine on\n    RewriteRule ^ https://%{SERVER_NAME}:8443%{REQUEST_URI} [R=301,L]\n",
				"    ProxyPass        / http://"+apacheBackend+"/\n    ProxyPassReverse / http://"+apacheBackend+"/\n"),
		},
		"verify-by-sni": {
			How: "one virtual host for both names, the 400 rules skipped when the SNI named the public host",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Chain(
				lb.Replace("    ServerName "+lb.ServerName+"\n", "    ServerName "+lb.ServerName+"\n    ServerAlias "+lb.PublicHost+"\n"),
				lb.Replace("    ServerName "+lb.PublicHost+"\n", "    ServerName public-unused.invalid\n"),
				lb.Replace(apacheRefusal, "    RewriteEngine on\n    RewriteCond %{SSL:SSL_TLS_SNI} ="+lb.PublicHost+"\n    RewriteRule ^ - [L]\n"+
					strings.TrimPrefix(apacheRefusal, "    RewriteEngine on\n")),
			)),
		},
		"cert-header-cut-at-8k": {
			How: "to fit a gateway's header limit",
			Apply: func(conf string, c lb.Config) (string, error) {
				// Right after the encoding, so that the cut counts encoded bytes.
				header := c.WithDefaults().CertHeader
				enc, proxy := apacheEncodeCert(header), "\n    ProxyPass "
				return lb.Replace(enc+proxy, enc+"    RequestHeader edit "+header+` "^(.{8192}).+$" "$1"`+"\n"+proxy)(conf, c)
			},
		},
		"tls13-only": {
			How:   "SSLProtocol TLSv1.3",
			Apply: replaceEvery("SSLProtocol -all +TLSv1.2 +TLSv1.3\n", "SSLProtocol -all +TLSv1.3\n", 2),
		},
		"ocsp-off": {
			How: "SSLOCSPEnable off: no certificate is checked with the responder",
			Apply: func(conf string, c lb.Config) (string, error) {
				if c.OCSPResponder == "" {
					return conf, nil // nothing to switch off without a responder
				}
				return lb.Replace("    SSLOCSPEnable             leaf\n", "    SSLOCSPEnable             off\n")(conf, c)
			},
		},
		"crl-ignored": {
			Apply: func(conf string, c lb.Config) (string, error) {
				if len(c.CRL) == 0 {
					return conf, nil // nothing to ignore in a configuration without CRLs
				}
				// Both lines go: revocation checking without a file would
				// fail every certificate rather than ignore the CRLs.
				return lb.Chain(
					lb.Replace("    SSLCARevocationFile   "+lb.ConfDir+"/crl.pem\n", ""),
					replaceLine("    SSLCARevocationCheck  "),
				)(conf, c)
			},
		},
	}
}

// replaceLine removes the one line that starts with prefix.
func replaceLine(prefix string) func(string, lb.Config) (string, error) {
	return func(conf string, _ lb.Config) (string, error) {
		lines := strings.SplitAfter(conf, "\n")
		var out []string
		for _, l := range lines {
			if !strings.HasPrefix(l, prefix) {
				out = append(out, l)
			}
		}
		if n := len(lines) - len(out); n != 1 {
			return "", fmt.Errorf("%d lines start with %q in the configuration, expected one", n, strings.TrimSpace(prefix))
		}
		return strings.Join(out, ""), nil
	}
}

// replaceEvery replaces each of exactly n occurrences of old: fewer or more
// means the configuration is not the one the mutation was written for.
func replaceEvery(old, new string, n int) func(string, lb.Config) (string, error) {
	return func(conf string, _ lb.Config) (string, error) {
		if got := strings.Count(conf, old); got != n {
			return "", fmt.Errorf("%q is %d times in the configuration, expected %d", strings.TrimSpace(old), got, n)
		}
		return strings.ReplaceAll(conf, old, new), nil
	}
}

// Apache httpd serves every configuration of a run from one process: each
// is a slot, a Listen and a VirtualHost of their own included from
// slots/, and a graceful restart (SIGUSR1) brings a new one up.
var _ lb.Multiplexed = Balancer{}

var apacheHostTemplate = template.Must(template.New("host.conf").Parse(`# Rendered by mtlsconform: Apache httpd 2.4 (mod_ssl) as the reference mTLS load balancer shared by a run.
# Every configuration is a slot under slots/, added by a graceful restart.
` + apacheServer + `
# The line "resuming normal operations" says it runs.
LogLevel warn mpm_event:notice
# Every graceful restart leaves the old children finishing beside the new
# ones: one child to start with, and room on the scoreboard for many.
StartServers      1
ServerLimit       64
ThreadsPerChild   25
MinSpareThreads   25
MaxSpareThreads   75
MaxRequestWorkers 1600
SSLSessionCache shmcb:/tmp/ssl_scache(512000)

# httpd does not start without a socket: one on the container's loopback,
# answering nothing but 404.
Listen 127.0.0.1:8442
<VirtualHost 127.0.0.1:8442>
</VirtualHost>

IncludeOptional {{.Dir}}/slots/*/httpd.conf
`))

func (Balancer) HostFiles() map[string][]byte {
	var b strings.Builder
	apacheHostTemplate.Execute(&b, map[string]any{"Dir": lb.ConfDir})
	return map[string][]byte{"host.conf": []byte(b.String())}
}
func (Balancer) HostCommand() []string {
	return []string{"apache2", "-DFOREGROUND", "-f", lb.ConfDir + "/host.conf"}
}
func (Balancer) HostReadyLog() string { return "resuming normal operations" }
func (Balancer) Reload() lb.Reload    { return lb.Reload{Signal: "USR1"} }
func (Balancer) ConfigTest() []string {
	return []string{"apache2", "-t", "-f", lb.ConfDir + "/host.conf"}
}

// Slot moves the rendered configuration's listeners and virtual hosts,
// mutations included, into slot id: the TLS port to port, the plain one
// to port+lb.PlainPortOffset, the redirect with it; the session cache stays
// the host's.
func (Balancer) Slot(r lb.Rendered, id string, port int) (map[string][]byte, error) {
	const listen = "\nListen 8443\n"
	start := strings.Index(r.Config, listen)
	if start < 0 {
		return nil, fmt.Errorf("apache slot %s: the rendered configuration has no %q", id, strings.TrimSpace(listen))
	}
	plain := port + lb.PlainPortOffset
	body := lb.InSlot(r.Config[start+1:], id)
	body, err := lb.ReplaceOnce(body, id, map[string]string{
		"Listen 8443\n":        fmt.Sprintf("Listen %d\n", port),
		"Listen 8088\n":        fmt.Sprintf("Listen %d\n", plain),
		"<VirtualHost *:8088>": fmt.Sprintf("<VirtualHost *:%d>", plain),
		"SSLSessionCache shmcb:/tmp/ssl_scache(512000)\n": "",
	})
	if err != nil {
		return nil, err
	}
	// Both hosts of the TLS port move; the redirect names the TLS port
	// unless a mutation took it away.
	for _, m := range []struct {
		old, new string
		min, max int
	}{
		{"<VirtualHost *:8443>", fmt.Sprintf("<VirtualHost *:%d>", port), 2, 2},
		{"https://%{SERVER_NAME}:8443%", fmt.Sprintf("https://%%{SERVER_NAME}:%d%%", port), 0, 1},
	} {
		if n := strings.Count(body, m.old); n < m.min || n > m.max {
			return nil, fmt.Errorf("apache slot %s: %q occurs %d times in the rendered configuration, want %d to %d", id, m.old, n, m.min, m.max)
		}
		body = strings.ReplaceAll(body, m.old, m.new)
	}
	files := lb.SlotFiles(r, "httpd.conf", id)
	files["slots/"+id+"/httpd.conf"] = []byte("# Slot " + id + " of the shared balancer.\n" + body)
	return files, nil
}

// httpd runs a configuration changed in place (C23) as a server of its
// own beside the shared one (-k start), restarted gracefully (-k
// graceful) as the documentation says, with its own pid, runtime folder,
// mutexes, session cache and log.
var _ lb.Separate = Balancer{}

func (Balancer) Separate(slot map[string][]byte, id string) (map[string][]byte, []string, []string, error) {
	if _, ok := slot["slots/"+id+"/httpd.conf"]; !ok {
		return nil, nil, nil, fmt.Errorf("apache slot %s has no httpd.conf", id)
	}
	files := lb.MoveSlot(slot, id)
	dir := lb.ConfDir + "/" + lb.OwnDir(id)
	run := "/tmp/httpd-" + id
	server, err := lb.ReplaceOnce(strings.ReplaceAll(apacheServer, "{{.Dir}}", lb.ConfDir), id, map[string]string{
		"DefaultRuntimeDir /tmp\n":  "DefaultRuntimeDir " + run + "\n",
		"PidFile /tmp/httpd.pid\n":  "PidFile " + run + "/httpd.pid\n",
		"Mutex file:/tmp default\n": "Mutex file:" + run + " default\n",
		// A daemon has no stderr to log to.
		"ErrorLog /dev/stderr\n": "ErrorLog " + run + "/error.log\n",
	})
	if err != nil {
		return nil, nil, nil, err
	}
	// One small child: at a graceful restart httpd starts the new
	// generation once an old child is gone, and where none was gone when
	// it first looked, a second later (its maintenance interval). With the
	// default 25 threads, and a second child for the default spare
	// threads, the first look missed them in about two restarts of five
	// (the CRL scenario alone 1.6 s instead of 0.6 s); with 8, one in 24.
	// Under a full run's load it still happens in about one run in five.
	files[lb.OwnDir(id)+"/server.conf"] = []byte("# Rendered by mtlsconform: slot " + id + " as a server of its own.\n" + server +
		"StartServers 1\nThreadsPerChild 8\nMinSpareThreads 8\nMaxSpareThreads 16\n" +
		"SSLSessionCache shmcb:" + run + "/ssl_scache(512000)\nIncludeOptional " + dir + "/httpd.conf\n")
	conf := dir + "/server.conf"
	return files, []string{"sh", "-c", "mkdir -p " + run + " && apache2 -f " + conf + " -k start"},
		[]string{"apache2", "-f", conf, "-k", "graceful"}, nil
}
