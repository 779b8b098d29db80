package nginx

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"mtlsconform/contract"
	"mtlsconform/lb"
)

// Balancer is the reference implementation: Debian bookworm's nginx-light,
// configured the way an nginx-based client-certificate balancer (the DLB,
// ingress-nginx) is.
type Balancer struct{}

func (Balancer) Name() string     { return "nginx" }
func (Balancer) Image() string    { return "mtlsconform/nginx:bookworm" }
func (Balancer) Packages() string { return "nginx-light" }
func (Balancer) Command() []string {
	return []string{"nginx", "-c", lb.ConfDir + "/nginx.conf", "-g", "daemon off;"}
}
func (Balancer) ReadyLog() string { return "start worker process" }

// Profile is nginx 1.22's, as measured.
func (Balancer) Profile() contract.Profile { return profile }

// profile is nginx 1.22's with OpenSSL 3.0, as measured.
var profile = contract.Profile{
	Name:        "reference-nginx",
	Description: "nginx 1.22 (Debian bookworm, OpenSSL 3.0) rendered from the reference configuration",
	Refusal:     contract.RefuseHTTP400,
	Deviations: []contract.Deviation{
		{Clause: "C11", Observed: contract.RefuseHTTP400,
			Reason: "nginx answers 400 to an expired certificate even with ssl_verify_client optional_no_ca; " +
				"the DLB documentation says the request passes with X-SSL-Client-Verify FAILED"},
		{Clause: "C15", Mode: contract.Optional, Observed: contract.RefuseHTTP400,
			Reason: "nginx answers 400 to a revoked certificate even with ssl_verify_client optional_no_ca " +
				"(optional_no_ca only tolerates errors about an unknown issuer); the contract wants the request passed with FAILED"},
		{Clause: "C23", Mode: contract.Optional, Observed: contract.RefuseHTTP400,
			Reason: "nginx answers 400 to a certificate revoked by the new CRL even with ssl_verify_client optional_no_ca, as to one revoked at start (C15)"},
		{Clause: "C24", Mode: contract.Optional, Observed: contract.RefuseHTTP400,
			Reason: "nginx refuses ssl_ocsp beside ssl_verify_client optional_no_ca, and with \"optional\" it answers 400 to a certificate its OCSP responder calls revoked, as to one a CRL revokes (C15)"},
	},
}

// Mutations are the ways the nginx configuration can be broken on purpose.
func (Balancer) Mutations() map[string]string { return nginxMutations().Docs() }

var nginxTemplate = template.Must(template.New("nginx.conf").Parse(`# Rendered by mtlsconform: the reference mTLS load balancer ({{.Mode}} mode).
worker_processes 1;
error_log stderr notice;
pid /tmp/nginx.pid;

events {
    worker_connections 512;
}

http {
{{.Maps}}
    # The partner API: the default host (a handshake without SNI gets it),
    # asking for client certificates. nginx answers 421 to a request whose
    # Host names this server on a connection whose SNI chose another.
    server {
        listen 8443 ssl http2 default_server;
        server_name {{.ServerName}};
        access_log off;
        server_tokens off;
        # Header names with "_" are dropped (nginx's default, said out
        # loud): a CGI-style backend reads X_SSL_Client_DN as X-SSL-Client-DN (C18).
        underscores_in_headers off;
        ignore_invalid_headers on;

        ssl_protocols          TLSv1.2 TLSv1.3;
        ssl_certificate        {{.Dir}}/server-chain.pem;
        ssl_certificate_key    {{.Dir}}/server.key;
        ssl_client_certificate {{.Dir}}/truststore.pem;
        ssl_verify_client      {{.VerifyClient}};
        ssl_verify_depth       {{.VerifyDepth}};
{{- if .HasCRL}}
        ssl_crl                {{.Dir}}/crl.pem;
{{- end}}
{{- if .OCSP}}
        # Each client certificate (the leaf) is checked with the OCSP
        # responder on every full handshake (no ssl_ocsp_cache); no good
        # answer, no entry (C24).
        ssl_ocsp               leaf;
        ssl_ocsp_responder     {{.OCSP}};
{{- if .OCSPResolver}}
        # The responder is named: nginx resolves it when it asks, with
        # the container engine's DNS.
        resolver               127.0.0.11 ipv6=off valid=30s;
{{- end}}
{{- end}}

        location / {
            proxy_pass http://{{.Backend}};
            proxy_http_version 1.1;
            # proxy_set_header replaces any copy the client sent (C13);
            # an empty value drops the header altogether.
{{- range .Sets}}
            proxy_set_header {{.}};
{{- end}}
        }
    }

    # A public host on the same port, without client certificates (C20):
    # it reaches the backend with every contract header dropped.
    server {
        listen 8443 ssl http2;
        server_name {{.PublicHost}};
        access_log off;
        server_tokens off;
        underscores_in_headers off;

        ssl_protocols          TLSv1.2 TLSv1.3;
        ssl_certificate        {{.Dir}}/server-chain.pem;
        ssl_certificate_key    {{.Dir}}/server.key;

        location / {
            proxy_pass http://{{.Backend}};
            proxy_http_version 1.1;
{{- range .Stripped}}
            proxy_set_header {{.}} "";
{{- end}}
        }
    }

    # Plain HTTP only redirects to HTTPS (C19).
    server {
        listen 8088;
        server_name _;
        access_log off;
        server_tokens off;
        return 301 https://$host:8443$request_uri;
    }
}
`))

// Render turns the typed configuration into nginx.conf and its files,
// with the run's server certificate chain and key.
func (Balancer) Render(c lb.Config, srv lb.ServerFiles) (lb.Rendered, error) {
	c, err := lb.Prepare(c)
	if err != nil {
		return lb.Rendered{}, err
	}
	hs, err := schemeHeaders(c.Scheme)
	if err != nil {
		return lb.Rendered{}, err
	}
	verify := map[contract.Mode]string{contract.Mandatory: "on", contract.Optional: "optional_no_ca"}[c.Mode]
	if c.Mode == contract.Optional && c.OCSPResponder != "" {
		// nginx refuses ssl_ocsp beside optional_no_ca ("incompatible"):
		// Optional mode with OCSP is "optional", where every certificate
		// that fails verification (an untrusted one too) gets 400.
		verify = "optional"
	}
	var b strings.Builder
	err = nginxTemplate.Execute(&b, map[string]any{
		"Mode":         c.Mode,
		"Dir":          lb.ConfDir,
		"VerifyClient": verify,
		"VerifyDepth":  c.VerifyDepth,
		"HasCRL":       len(c.CRL) > 0,
		"OCSP":         c.OCSPResponder,
		"OCSPResolver": c.OCSPResponder != "" && c.OCSPHostIsName(),
		"Backend":      lb.BackendAlias + ":" + strings.TrimSuffix(lb.BackendPort, "/tcp"),
		"Maps":         hs.maps,
		"Sets":         hs.sets,
		"ServerName":   lb.ServerName,
		"PublicHost":   lb.PublicHost,
		"Stripped":     c.Scheme.Stripped(),
	})
	if err != nil {
		return lb.Rendered{}, fmt.Errorf("render nginx.conf: %w", err)
	}
	conf := b.String()
	conf, err = nginxMutations().Apply("nginx", conf, c)
	if err != nil {
		return lb.Rendered{}, err
	}
	return lb.Text("nginx.conf", conf, c, srv.Files()), nil
}

// nginx serves every configuration of a run from one process: each is a
// slot, a server block on a port of its own included from slots/, and a
// reload (SIGHUP) brings a new one up while the others keep serving.
var _ lb.Multiplexed = Balancer{}

const nginxHostConf = `# Rendered by mtlsconform: the reference mTLS load balancer shared by a run.
# Every configuration is a slot under slots/, added by a reload.
worker_processes 1;
error_log stderr notice;
pid /tmp/nginx.pid;

events {
    worker_connections 1024;
}

http {
    include ` + lb.ConfDir + `/slots/*/http.conf;
}
`

func (Balancer) HostFiles() map[string][]byte {
	return map[string][]byte{"host.conf": []byte(nginxHostConf)}
}
func (Balancer) HostCommand() []string {
	return []string{"nginx", "-c", lb.ConfDir + "/host.conf", "-g", "daemon off;"}
}
func (n Balancer) HostReadyLog() string { return n.ReadyLog() }
func (Balancer) Reload() lb.Reload      { return lb.Reload{Signal: "HUP"} }
func (Balancer) ConfigTest() []string {
	return []string{"nginx", "-t", "-q", "-c", lb.ConfDir + "/host.conf"}
}

// nginxMapVar finds the variables a configuration defines with map: they
// are global in nginx, so each slot gets its own names.
var nginxMapVar = regexp.MustCompile(`(?m)^\s*map \$\w+ \$(\w+) \{`)

// Slot moves the rendered configuration's http block, mutations included,
// into slot id: its files under slots/<id>/, its port, its map variables.
func (Balancer) Slot(r lb.Rendered, id string, port int) (map[string][]byte, error) {
	const open = "\nhttp {\n"
	start, end := strings.Index(r.Config, open), strings.LastIndex(r.Config, "\n}")
	if start < 0 || end < start {
		return nil, fmt.Errorf("nginx slot %s: the rendered configuration has no http block", id)
	}
	body, err := lb.ReplaceOnce(lb.InSlot(r.Config[start+len(open):end], id), id, map[string]string{
		"listen 8443 ssl http2 default_server;": fmt.Sprintf("listen %d ssl http2 default_server;", port),
		"listen 8443 ssl http2;":                fmt.Sprintf("listen %d ssl http2;", port),
		"listen 8088;":                          fmt.Sprintf("listen %d;", port+lb.PlainPortOffset),
	})
	if err != nil {
		return nil, err
	}
	// The plain listener's redirect names the TLS port (a mutant may have
	// no redirect at all).
	body = strings.ReplaceAll(body, "https://$host:8443$", fmt.Sprintf("https://$host:%d$", port))
	for _, m := range nginxMapVar.FindAllStringSubmatch(body, -1) {
		body = regexp.MustCompile(`\$`+m[1]+`\b`).ReplaceAllString(body, "$$"+m[1]+"_"+id)
	}
	files := lb.SlotFiles(r, "nginx.conf", id)
	files["slots/"+id+"/http.conf"] = []byte("# Slot " + id + " of the shared balancer.\n" + body + "\n")
	return files, nil
}

// nginx runs a configuration changed in place (C23) as a master process
// of its own beside the shared one, reloaded with -s reload.
var _ lb.Separate = Balancer{}

func (Balancer) Separate(slot map[string][]byte, id string) (map[string][]byte, []string, []string, error) {
	files := lb.MoveSlot(slot, id)
	dir := lb.ConfDir + "/" + lb.OwnDir(id)
	if _, ok := files[lb.OwnDir(id)+"/http.conf"]; !ok {
		return nil, nil, nil, fmt.Errorf("nginx slot %s has no http.conf", id)
	}
	files[lb.OwnDir(id)+"/nginx.conf"] = []byte(`# Rendered by mtlsconform: slot ` + id + ` as a balancer process of its own.
worker_processes 1;
# A daemon of its own: its log must not hold the starting command's stderr.
error_log /tmp/nginx-` + id + `.log notice;
pid /tmp/nginx-` + id + `.pid;

events {
    worker_connections 256;
}

http {
    include ` + dir + `/http.conf;
}
`)
	conf := dir + "/nginx.conf"
	return files, []string{"nginx", "-c", conf}, []string{"nginx", "-c", conf, "-s", "reload"}, nil
}
