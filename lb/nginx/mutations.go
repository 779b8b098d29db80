package nginx

import (
	"net/url"
	"strings"

	"mtlsconform/contract"
	"mtlsconform/lb"
)

const verifyLine = "proxy_set_header " + contract.HeaderVerify + " $mtls_client_verify;"

func nginxMutations() lb.Mutations[string] {
	return lb.Mutations[string]{
		"optional-for-mandatory": {
			How:   "ssl_verify_client optional: untrusted certificates still fail",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Replace("ssl_verify_client      on;", "ssl_verify_client      optional;")),
		},
		"optional-no-ca-for-mandatory": {
			How:   "ssl_verify_client optional_no_ca",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Replace("ssl_verify_client      on;", "ssl_verify_client      optional_no_ca;")),
		},
		"no-cert-403": {
			Apply: lb.OnlyIn(contract.Mandatory, lb.Chain(
				lb.Replace("ssl_verify_client      on;", "ssl_verify_client      optional;"),
				lb.Replace("location / {", "location / {\n            if ($ssl_client_verify = NONE) { return 403; }"),
			)),
		},
		"no-cert-495": {
			Apply: lb.OnlyIn(contract.Mandatory, lb.Chain(
				lb.Replace("ssl_verify_client      on;", "ssl_verify_client      optional;"),
				lb.Replace("location / {", "location / {\n            if ($ssl_client_verify = NONE) { return 495; }"),
			)),
		},
		"different-400-text": {
			How: "error_page maps the certificate errors to a page of the team's own",
			// nginx answers certificate problems with its internal codes 495
			// and 496; error_page maps them to a page of the team's own.
			Apply: lb.Replace("location / {", "error_page 495 496 =400 /mtls-error.html;\n        location = /mtls-error.html { internal; default_type text/html; return 400 \"<html><body>Client certificate problem</body></html>\"; }\n\n        location / {"),
		},
		"unmapped-failed": {
			How:   "$ssl_client_verify as it is",
			Apply: lb.Replace(verifyLine, "proxy_set_header "+contract.HeaderVerify+" $ssl_client_verify;"),
		},
		"pass-client-verify": {
			How: "a map passes the caller's value on when it sent one",
			Apply: lb.Chain(
				lb.Replace("    server {", "    map $http_x_ssl_client_verify $spoofable_verify {\n        \"\"      $mtls_client_verify;\n        default $http_x_ssl_client_verify;\n    }\n\n    server {"),
				lb.Replace(verifyLine, "proxy_set_header "+contract.HeaderVerify+" $spoofable_verify;"),
			),
		},
		"no-dn-header": {
			Apply: lb.Replace("proxy_set_header "+contract.HeaderDN+" $ssl_client_s_dn;", ""),
		},
		"legacy-dn": {
			How: "$ssl_client_s_dn_legacy and $ssl_client_i_dn_legacy",
			Apply: lb.Chain(
				lb.Replace("$ssl_client_s_dn;", "$ssl_client_s_dn_legacy;"),
				lb.Replace("$ssl_client_i_dn;", "$ssl_client_i_dn_legacy;"),
			),
		},
		"no-serial-header": {
			Apply: lb.Replace("proxy_set_header "+contract.HeaderSerial+" $ssl_client_serial;", ""),
		},
		"cert-not-encoded": {
			How:   "$ssl_client_cert: PEM with folded lines",
			Apply: lb.Replace("$ssl_client_escaped_cert;", "$ssl_client_cert;"),
		},
		"wrong-cert-header": {
			How: "the first truststore entry",
			Apply: func(conf string, c lb.Config) (string, error) {
				first, _, _ := strings.Cut(string(c.Truststore), "-----END CERTIFICATE-----")
				wrong := url.QueryEscape(first + "-----END CERTIFICATE-----\n")
				return lb.Replace("$ssl_client_escaped_cert;", "\""+wrong+"\";")(conf, c)
			},
		},
		"underscores-in-headers": {
			How:   "underscores_in_headers on",
			Apply: lb.Replace("underscores_in_headers off;\n        ignore_invalid_headers on;", "underscores_in_headers on;\n        ignore_invalid_headers on;"),
		},
		"plain-port-proxies": {
			Apply: lb.Replace("        return 301 https://$host:8443$request_uri;", "        location / {\n            proxy_pass http://"+lb.BackendAlias+":"+strings.TrimSuffix(lb.BackendPort, "/tcp")+";\n            proxy_http_version 1.1;\n        }"),
		},
		"verify-by-sni": {
			How: "one server for both hosts, the 400 decided by $ssl_server_name",
			Apply: lb.OnlyIn(contract.Mandatory, lb.Chain(
				lb.Replace("server_name "+lb.ServerName+";", "server_name "+lb.ServerName+" "+lb.PublicHost+";"),
				lb.Replace("server_name "+lb.PublicHost+";", "server_name public-unused.invalid;"),
				lb.Replace("ssl_verify_client      on;", "ssl_verify_client      optional_no_ca;"),
				lb.Replace("location / {", "location / {\n            set $mtls_gate \"$ssl_server_name:$ssl_client_verify\";\n            if ($mtls_gate ~ \"^"+lb.ServerName+":(NONE|FAILED)\") { return 400; }"),
			)),
		},
		"cert-header-cut-at-8k": {
			How: "as a proxy hop with an 8 KiB header limit does",
			Apply: lb.Chain(
				lb.Replace("    server {", "    map $ssl_client_escaped_cert $mtls_cert_cut {\n        \"~^(?<mtls_head>.{0,8192})\" $mtls_head;\n    }\n\n    server {"),
				lb.Replace("$ssl_client_escaped_cert;", "$mtls_cert_cut;"),
			),
		},
		"tls13-only": {
			How:   "ssl_protocols TLSv1.3",
			Apply: lb.Replace("ssl_protocols          TLSv1.2 TLSv1.3;", "ssl_protocols          TLSv1.3;"),
		},
		"ocsp-off": {
			How: "the ssl_ocsp lines left out: no certificate is checked with the responder",
			Apply: func(conf string, c lb.Config) (string, error) {
				if c.OCSPResponder == "" {
					return conf, nil // nothing to switch off without a responder
				}
				return lb.Chain(
					lb.Replace("        ssl_ocsp               leaf;\n", ""),
					lb.Replace("        ssl_ocsp_responder     "+c.OCSPResponder+";\n", ""),
				)(conf, c)
			},
		},
		"crl-ignored": {
			Apply: func(conf string, c lb.Config) (string, error) {
				if len(c.CRL) == 0 {
					return conf, nil // nothing to ignore in a configuration without CRLs
				}
				return lb.Replace("ssl_crl                "+lb.ConfDir+"/crl.pem;", "")(conf, c)
			},
		},
	}
}
