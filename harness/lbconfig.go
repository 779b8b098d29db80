package harness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mtlsconform/contract"
	"sort"
	"strings"
	"text/template"
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

var nginxTemplate = template.Must(template.New("nginx.conf").Parse(`# Rendered by mtlsconform: the reference mTLS load balancer ({{.Mode}} mode).
worker_processes 1;
error_log stderr notice;
pid /tmp/nginx.pid;

events {
    worker_connections 512;
}

http {
    access_log off;
    server_tokens off;

    # Optional mode: nginx reports an untrusted certificate as
    # "FAILED:<reason>"; the contract (C10) wants plain FAILED.
    map $ssl_client_verify $mtls_client_verify {
        "~^FAILED" FAILED;
        default    $ssl_client_verify;
    }

    server {
        listen 8443 ssl;
        server_name _;

        ssl_certificate        {{.Dir}}/server-chain.pem;
        ssl_certificate_key    {{.Dir}}/server.key;
        ssl_client_certificate {{.Dir}}/truststore.pem;
        ssl_verify_client      {{.VerifyClient}};
        ssl_verify_depth       {{.VerifyDepth}};
{{- if .HasCRL}}
        ssl_crl                {{.Dir}}/crl.pem;
{{- end}}

        location / {
            proxy_pass http://{{.Backend}};
            proxy_http_version 1.1;
            # proxy_set_header replaces any copy the client sent (C13);
            # an empty value drops the header altogether.
            proxy_set_header {{.HeaderVerify}} $mtls_client_verify;
            proxy_set_header {{.HeaderDN}} $ssl_client_s_dn;
            proxy_set_header {{.HeaderIssuer}} $ssl_client_i_dn;
            proxy_set_header {{.HeaderSerial}} $ssl_client_serial;
            proxy_set_header {{.CertHeader}} $ssl_client_escaped_cert;
        }
    }
}
`))

// Rendered is a configuration ready to copy into a container.
type Rendered struct {
	Conf  string            // nginx.conf
	Files map[string][]byte // file name (inside lbConfDir) → content
	Key   string            // identity of the whole configuration
}

// Render turns the typed configuration into nginx.conf and its files. The
// server certificate chain and key are the environment's.
func Render(c LBConfig, serverChain, serverKey []byte) (Rendered, error) {
	c = c.withDefaults()
	if len(bytes.TrimSpace(c.Truststore)) == 0 {
		return Rendered{}, fmt.Errorf("load balancer configuration has an empty truststore")
	}
	verify := map[contract.Mode]string{contract.Mandatory: "on", contract.Optional: "optional_no_ca"}[c.Mode]
	if verify == "" {
		return Rendered{}, fmt.Errorf("unknown mode %q: use mandatory or optional", c.Mode)
	}
	if strings.ContainsAny(c.CertHeader, " \t\r\n;{}") {
		return Rendered{}, fmt.Errorf("certificate header name %q is not a valid header name", c.CertHeader)
	}
	var b strings.Builder
	err := nginxTemplate.Execute(&b, map[string]any{
		"Mode":         c.Mode,
		"Dir":          lbConfDir,
		"VerifyClient": verify,
		"VerifyDepth":  c.VerifyDepth,
		"HasCRL":       len(c.CRL) > 0,
		"Backend":      backendAlias + ":" + strings.TrimSuffix(backendPort, "/tcp"),
		"HeaderVerify": HeaderVerify,
		"HeaderDN":     HeaderDN,
		"HeaderIssuer": HeaderIssuer,
		"HeaderSerial": HeaderSerial,
		"CertHeader":   c.CertHeader,
	})
	if err != nil {
		return Rendered{}, fmt.Errorf("render nginx.conf: %w", err)
	}
	conf := b.String()
	for _, name := range c.Mutations {
		m, ok := mutations[name]
		if !ok {
			return Rendered{}, fmt.Errorf("unknown mutation %q (known: %s)", name, strings.Join(MutationNames(), ", "))
		}
		if conf, err = m.apply(conf, c); err != nil {
			return Rendered{}, fmt.Errorf("mutation %s: %w", name, err)
		}
	}
	r := Rendered{
		Conf: conf,
		Files: map[string][]byte{
			"nginx.conf":       []byte(conf),
			"server-chain.pem": serverChain,
			"server.key":       serverKey,
			"truststore.pem":   c.Truststore,
		},
	}
	if len(c.CRL) > 0 {
		r.Files["crl.pem"] = c.CRL
	}
	r.Key = hashFiles(r.Files)
	return r, nil
}

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
