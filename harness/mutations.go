package harness

import (
	"fmt"
	"mtlsconform/contract"
	"net/url"
	"strings"
)

// A mutation breaks the reference configuration on purpose, the way a real
// load balancer might be misconfigured, so the suite can prove it notices.
// Each one edits the rendered nginx.conf and refuses to apply when the text
// it edits is not there (a silent no-op would make a useless "mutant").
type mutation struct {
	doc   string
	apply func(conf string, c LBConfig) (string, error)
}

// applyMutations applies the named mutations, in order, to a rendered
// text configuration; an unknown name or one whose text is missing is an
// error.
func applyMutations(impl string, conf string, c LBConfig, muts map[string]mutation) (string, error) {
	for _, name := range c.Mutations {
		m, ok := muts[name]
		if !ok {
			return "", fmt.Errorf("unknown mutation %q of %s (known: %s)", name, impl, strings.Join(sortedKeys(mutationDocs(muts)), ", "))
		}
		var err error
		if conf, err = m.apply(conf, c); err != nil {
			return "", fmt.Errorf("%s mutation %s: %w", impl, name, err)
		}
	}
	return conf, nil
}

// mutationDocs says what each mutation breaks.
func mutationDocs(muts map[string]mutation) map[string]string {
	out := map[string]string{}
	for name, m := range muts {
		out[name] = m.doc
	}
	return out
}

// rendered gathers what a text-configured implementation writes: its main
// file, the server credential files, the truststore and the CRL bundle
// when there is one, under one configuration key.
func rendered(mainFile, conf string, c LBConfig, server map[string][]byte) Rendered {
	r := Rendered{Config: conf, Files: map[string][]byte{mainFile: []byte(conf), "truststore.pem": c.Truststore}}
	for name, data := range server {
		r.Files[name] = data
	}
	if len(c.CRL) > 0 {
		r.Files["crl.pem"] = c.CRL
	}
	r.Key = hashFiles(r.Files)
	return r
}

func replace(old, new string) func(string, LBConfig) (string, error) {
	return func(conf string, _ LBConfig) (string, error) {
		if !strings.Contains(conf, old) {
			return "", fmt.Errorf("%q is not in the configuration", strings.TrimSpace(old))
		}
		return strings.Replace(conf, old, new, 1), nil
	}
}

func chain(steps ...func(string, LBConfig) (string, error)) func(string, LBConfig) (string, error) {
	return func(conf string, c LBConfig) (string, error) {
		var err error
		for _, s := range steps {
			if conf, err = s(conf, c); err != nil {
				return "", err
			}
		}
		return conf, nil
	}
}

func onlyIn(mode contract.Mode, f func(string, LBConfig) (string, error)) func(string, LBConfig) (string, error) {
	return func(conf string, c LBConfig) (string, error) {
		if c.withDefaults().Mode != mode {
			return conf, nil
		}
		return f(conf, c)
	}
}

const verifyLine = "proxy_set_header " + HeaderVerify + " $mtls_client_verify;"

func nginxMutations() map[string]mutation {
	return map[string]mutation{
		"optional-for-mandatory": {
			doc:   "Mandatory mode configured as nginx 'optional': untrusted certificates still fail, but callers without one get through",
			apply: onlyIn(contract.Mandatory, replace("ssl_verify_client      on;", "ssl_verify_client      optional;")),
		},
		"optional-no-ca-for-mandatory": {
			doc:   "Mandatory mode configured as 'optional_no_ca': every caller gets through",
			apply: onlyIn(contract.Mandatory, replace("ssl_verify_client      on;", "ssl_verify_client      optional_no_ca;")),
		},
		"no-cert-403": {
			doc: "a caller without a certificate gets 403 instead of the 400 page",
			apply: onlyIn(contract.Mandatory, chain(
				replace("ssl_verify_client      on;", "ssl_verify_client      optional;"),
				replace("location / {", "location / {\n            if ($ssl_client_verify = NONE) { return 403; }"),
			)),
		},
		"no-cert-495": {
			doc: "a caller without a certificate gets nginx's certificate-error answer (495, sent as 400 \"The SSL certificate error\")",
			apply: onlyIn(contract.Mandatory, chain(
				replace("ssl_verify_client      on;", "ssl_verify_client      optional;"),
				replace("location / {", "location / {\n            if ($ssl_client_verify = NONE) { return 495; }"),
			)),
		},
		"different-400-text": {
			doc: "the 400 answer carries its own page instead of \"No required SSL certificate was sent\"",
			// nginx answers certificate problems with its internal codes 495
			// and 496; error_page maps them to a page of the team's own.
			apply: replace("location / {", "error_page 495 496 =400 /mtls-error.html;\n        location = /mtls-error.html { internal; default_type text/html; return 400 \"<html><body>Client certificate problem</body></html>\"; }\n\n        location / {"),
		},
		"unmapped-failed": {
			doc:   "Optional mode passes nginx's FAILED:<reason> through instead of plain FAILED",
			apply: replace(verifyLine, "proxy_set_header "+HeaderVerify+" $ssl_client_verify;"),
		},
		"pass-client-verify": {
			doc: "a client-supplied X-SSL-Client-Verify reaches the backend",
			apply: chain(
				replace("    server {", "    map $http_x_ssl_client_verify $spoofable_verify {\n        \"\"      $mtls_client_verify;\n        default $http_x_ssl_client_verify;\n    }\n\n    server {"),
				replace(verifyLine, "proxy_set_header "+HeaderVerify+" $spoofable_verify;"),
			),
		},
		"no-dn-header": {
			doc:   "the subject DN header is not forwarded",
			apply: replace("proxy_set_header "+HeaderDN+" $ssl_client_s_dn;", ""),
		},
		"no-serial-header": {
			doc:   "the serial header is not forwarded",
			apply: replace("proxy_set_header "+HeaderSerial+" $ssl_client_serial;", ""),
		},
		"cert-not-encoded": {
			doc:   "the certificate header carries PEM with folded lines instead of URL-encoded PEM",
			apply: replace("$ssl_client_escaped_cert;", "$ssl_client_cert;"),
		},
		"wrong-cert-header": {
			doc: "the certificate header carries a certificate other than the client's (the first truststore entry)",
			apply: func(conf string, c LBConfig) (string, error) {
				first, _, _ := strings.Cut(string(c.Truststore), "-----END CERTIFICATE-----")
				wrong := url.QueryEscape(first + "-----END CERTIFICATE-----\n")
				return replace("$ssl_client_escaped_cert;", "\""+wrong+"\";")(conf, c)
			},
		},
		"underscores-in-headers": {
			doc:   "underscores_in_headers on: client headers spelled with \"_\" (X_SSL_Client_DN) reach the backend beside the balancer's own (C18)",
			apply: replace("underscores_in_headers off;\n        ignore_invalid_headers on;", "underscores_in_headers on;\n        ignore_invalid_headers on;"),
		},
		"plain-port-proxies": {
			doc:   "the plain-HTTP listener proxies to the API with the caller's headers instead of redirecting (C19)",
			apply: replace("        return 301 https://$host:8443$request_uri;", "        location / {\n            proxy_pass http://"+backendAlias+":"+strings.TrimSuffix(backendPort, "/tcp")+";\n            proxy_http_version 1.1;\n        }"),
		},
		"verify-by-sni": {
			doc: "one server for both hosts, certificates demanded by the SNI the handshake chose instead of the Host the request names (C20)",
			apply: onlyIn(contract.Mandatory, chain(
				replace("server_name "+ServerName+";", "server_name "+ServerName+" "+PublicHost+";"),
				replace("server_name "+PublicHost+";", "server_name public-unused.invalid;"),
				replace("ssl_verify_client      on;", "ssl_verify_client      optional_no_ca;"),
				replace("location / {", "location / {\n            set $mtls_gate \"$ssl_server_name:$ssl_client_verify\";\n            if ($mtls_gate ~ \"^"+ServerName+":(NONE|FAILED)\") { return 400; }"),
			)),
		},
		"cert-header-cut-at-8k": {
			doc: "the certificate header is cut to its first 8 KiB, as a proxy hop with an 8 KiB header limit does (C21)",
			apply: chain(
				replace("    server {", "    map $ssl_client_escaped_cert $mtls_cert_cut {\n        \"~^(?<mtls_head>.{0,8192})\" $mtls_head;\n    }\n\n    server {"),
				replace("$ssl_client_escaped_cert;", "$mtls_cert_cut;"),
			),
		},
		"tls13-only": {
			doc:   "ssl_protocols TLSv1.3 alone: partners whose clients speak TLS 1.2 are locked out (C22)",
			apply: replace("ssl_protocols          TLSv1.2 TLSv1.3;", "ssl_protocols          TLSv1.3;"),
		},
		"crl-ignored": {
			doc: "the CRL bundle is not loaded",
			apply: func(conf string, c LBConfig) (string, error) {
				if len(c.CRL) == 0 {
					return conf, nil // nothing to ignore in a configuration without CRLs
				}
				return replace("ssl_crl                "+lbConfDir+"/crl.pem;", "")(conf, c)
			},
		},
	}
}
