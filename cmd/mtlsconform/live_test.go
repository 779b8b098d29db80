package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"mtlsconform/contract"
	"mtlsconform/features"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/lb/apache"
	"mtlsconform/lb/haproxy"
	"mtlsconform/lb/nginx"
)

// liveLab is what a team has around a balancer it configured by hand: a
// backend serving its own API's products (not the reference list), the
// partner PKI it trusts, the CA of its own certificate, and the files a
// partner and an operator hold. Balancers are started from configurations
// written by hand under testdata/live, never from the harness's template.
type liveLab struct {
	env                        *harness.Environment
	dir                        string
	clientCert, clientKey, p12 string
	serverCA, caCert, caKey    string
	truststore                 string
	lbFiles                    map[string][]byte
}

const labP12Password = "p12-secret"

func newLiveLab(t *testing.T) *liveLab {
	t.Helper()
	var products []productapi.Product
	data, err := os.ReadFile("testdata/live/products.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &products); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	env, err := harness.Start(ctx, harness.Options{Implementation: all.Default(), Logf: t.Logf, Products: products})
	if env != nil {
		t.Cleanup(func() { env.Close(ctx) })
	}
	if err != nil {
		t.Fatal(err)
	}
	root := pkitest.MustRootCA(t, "Live Root CA")
	issuing := pkitest.MustIntermediate(t, root, "Live Issuing CA")
	partner := pkitest.MustClient(t, issuing, "live-partner")
	dir := t.TempDir()
	files, err := partner.WriteFiles(dir, "partner", labP12Password)
	if err != nil {
		t.Fatal(err)
	}
	caFiles, err := issuing.WriteFiles(dir, "issuing", "")
	if err != nil {
		t.Fatal(err)
	}
	lab := &liveLab{env: env, dir: dir, clientCert: files.Chain, clientKey: files.Key, p12: files.P12,
		caCert: caFiles.Chain, caKey: caFiles.Key,
		serverCA: filepath.Join(dir, "server-ca.pem"), truststore: filepath.Join(dir, "partners.pem")}
	if err := os.WriteFile(lab.serverCA, pki.CertPEM(env.ServerCA.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	trust := pki.Bundle(issuing.Cert, root.Cert)
	if err := os.WriteFile(lab.truststore, trust, 0o644); err != nil {
		t.Fatal(err)
	}
	chain, key := env.ServerCredential()
	lab.lbFiles = map[string][]byte{
		"tls.crt": chain, "tls.key": key, "partners.pem": trust, "truststore.pem": trust,
		// HAProxy reads certificate and key from one file.
		"server.pem": append(append([]byte{}, chain...), key...),
	}
	return lab
}

// start runs a hand-written configuration from testdata/live: nginx
// (.conf), HAProxy (.cfg) or Apache httpd (.httpd.conf), started as the
// harness starts Debian's apache2.
func (l *liveLab) start(t *testing.T, conf string) *harness.LoadBalancer {
	t.Helper()
	return l.startAll(t, conf)[conf]
}

// startAll starts several configurations at once. Those of one balancer
// (nginx, HAProxy) share a container, a process each on a port of its own:
// a container costs the engine about a second of CPU, and this lab runs 26
// configurations. Apache's two keep a container each.
func (l *liveLab) startAll(t *testing.T, confs ...string) map[string]*harness.LoadBalancer {
	t.Helper()
	var groups [][]string
	byKind := map[string]int{}
	for _, conf := range confs {
		kind := labKind(conf)
		if i, ok := byKind[kind]; ok && kind != "apache" && kind != "" {
			groups[i] = append(groups[i], conf)
			continue
		}
		byKind[kind] = len(groups)
		groups = append(groups, []string{conf})
	}
	started := make([][]*harness.LoadBalancer, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, group := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if started[i], errs[i] = l.startGroup(t.Context(), group); errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", strings.Join(group, ", "), errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	lbs := map[string]*harness.LoadBalancer{}
	for i, group := range groups {
		for j, conf := range group {
			lbs[conf] = started[i][j]
		}
	}
	return lbs
}

// labKind is the balancer a file of testdata/live configures.
func labKind(conf string) string {
	switch {
	case strings.HasSuffix(conf, ".httpd.conf"):
		return "apache"
	case filepath.Ext(conf) == ".conf":
		return "nginx"
	case filepath.Ext(conf) == ".cfg":
		return "haproxy"
	}
	return ""
}

// labPortBase is the first TLS port of a shared container's balancers.
const labPortBase = 9443

// startGroup starts configurations of one balancer. One alone listens on
// 8443 and 8088 as written; several share a container, the k-th listening
// on labPortBase+k and its plain port lb.PlainPortOffset above, its pid file
// its own: nothing else of what was written by hand changes (a redirect to
// https://$host:8443 still names the port a deployment would publish).
func (l *liveLab) startGroup(ctx context.Context, confs []string) ([]*harness.LoadBalancer, error) {
	c := harness.CustomLB{Files: maps.Clone(l.lbFiles)}
	var procs []string
	for k, conf := range confs {
		data, err := os.ReadFile(filepath.Join("testdata/live", conf))
		if err != nil {
			return nil, err
		}
		// Its file, its command, and how it moves to port when it shares
		// the container.
		port, name := labPortBase+k, ""
		var moves map[string]string
		switch labKind(conf) {
		case "apache":
			name = "httpd.conf"
			c.Balancer, c.Cmd = apache.Balancer{}, apache.Balancer{}.Command()
		case "nginx":
			name = fmt.Sprintf("nginx-%d.conf", k)
			c.Balancer, c.Cmd = nginx.Balancer{}, []string{"nginx", "-c", "/etc/mtlsconform/" + name, "-g", "daemon off;"}
			moves = map[string]string{"listen 8443": fmt.Sprintf("listen %d", port), "listen 8088": fmt.Sprintf("listen %d", port+lb.PlainPortOffset),
				"pid /tmp/nginx.pid;": fmt.Sprintf("pid /tmp/nginx-%d.pid;", k)}
		case "haproxy":
			name = fmt.Sprintf("haproxy-%d.cfg", k)
			c.Balancer, c.Cmd = haproxy.Balancer{}, []string{"haproxy", "-db", "-f", "/etc/mtlsconform/" + name}
			moves = map[string]string{"bind :8443 ": fmt.Sprintf("bind :%d ", port), "bind :8088": fmt.Sprintf("bind :%d", port+lb.PlainPortOffset)}
		default:
			return nil, errors.New(".conf (nginx), .cfg (HAProxy) or .httpd.conf (Apache)")
		}
		text := string(data)
		if len(confs) > 1 {
			c.Ports = append(c.Ports, port)
			for old, new := range moves {
				text = strings.ReplaceAll(text, old, new)
			}
			if strings.Contains(text, "8443 ssl") || strings.Contains(text, ":8443 ") {
				return nil, fmt.Errorf("%s: a TLS listener on 8443 is left after moving it to %d", conf, port)
			}
		}
		c.Files[name] = []byte(text)
		procs = append(procs, shellQuote(c.Cmd)+" &")
	}
	if len(confs) == 1 {
		bal, err := l.env.CustomLoadBalancer(ctx, c)
		return []*harness.LoadBalancer{bal}, err
	}
	// Each in the background, their output the container's; the
	// container lives while any of them does.
	c.Cmd = []string{"sh", "-c", strings.Join(procs, "\n") + "\nwait\n"}
	return l.env.CustomLoadBalancers(ctx, c)
}

// shellQuote joins a command for sh, each word single-quoted.
func shellQuote(cmd []string) string {
	words := make([]string, len(cmd))
	for i, w := range cmd {
		words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(words, " ")
}

// args is a `run --target` command line against url in mode.
func (l *liveLab) args(out, url, mode string, extra ...string) []string {
	return append([]string{"run", "--out", out, "--target", url, "--server-name", "localhost", "--mode", mode,
		"--client-cert", l.clientCert, "--client-key", l.clientKey, "--server-ca", l.serverCA,
		"--ca-cert", l.caCert, "--ca-key", l.caKey}, extra...)
}

// liveRun runs the CLI and returns its exit status, output and results.
func liveRun(t *testing.T, args []string) (int, string, map[string]contract.ScenarioResult) {
	t.Helper()
	code, stdout, stderr := cli(t, args...)
	out := args[2]
	noKeyMaterial(t, out, stdout, stderr)
	return code, stdout + stderr, readResults(t, out)
}

// TestLiveTargets runs the suite against balancers configured by hand, as
// a team would point it at its own: conformant ones must pass (exit 0),
// broken ones must be caught by a promise of the contract (exit 1), and a
// run that verified nothing must not pass (exit 3).
func TestLiveTargets(t *testing.T) {
	harnesstest.RequireDocker(t)
	t.Parallel() // its own environment and balancers
	lab := newLiveLab(t)
	lbs := lab.startAll(t,
		"nginx-mandatory.conf", "nginx-optional.conf", "nginx-virtual-hosts.conf",
		"haproxy-dlb.cfg", "haproxy-optional.cfg", "haproxy-verify-required.cfg", "apache-mandatory.httpd.conf",
		"broken-lets-anyone-in.conf", "broken-trusts-any-certificate.conf", "broken-wrong-body.conf",
		"broken-unmapped-failed.conf", "broken-legacy-dn.conf", "broken-forgeable-verify.conf", "broken-tls12-only.conf", "broken-plain-port-proxies.conf",
		"broken-haproxy-underscores.cfg", "broken-haproxy-small-buffer.cfg", "broken-haproxy-optional-underscores.cfg",
		"broken-apache-underscores.httpd.conf",
		"nginx-envoy-xfcc.conf", "nginx-ingress.conf", "haproxy-rfc9440.cfg",
		"broken-xfcc-unquoted.conf", "broken-haproxy-rfc9440-chain.cfg", "broken-haproxy-raw-plus.cfg",
		"nginx-ocsp.conf",
	)
	// The echo backend is the harness's OCSP responder too; nginx-ocsp.conf
	// asks it, and the run reaches its admin path from here.
	admin, err := lab.env.OCSPAdmin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ocspURL := admin.Base + productapi.OCSPPath
	// args adds --http-target, the balancer's plain listener, when plain.
	args := func(out, conf, mode string, plain bool, extra []string) []string {
		if plain {
			extra = append([]string{"--http-target", lbs[conf].PlainURL}, extra...)
		}
		return lab.args(out, lbs[conf].URL, mode, extra...)
	}

	// The scenarios of C18–C22 named below, as the results name them.
	const (
		smuggledTrusted   = "A trusted caller's headers with underscores and in other cases never reach the API"
		smuggledTwice     = "A trusted caller's headers sent twice never reach the API"
		smuggledNoCert    = "A caller without a certificate who smuggles SUCCESS is refused and reaches nothing"
		smuggledOptNone   = "A caller without a certificate cannot smuggle SUCCESS under another spelling"
		smuggledOptFailed = "An untrusted caller cannot smuggle SUCCESS under another spelling"
		plainMandatory    = "Mandatory mode: a plain-HTTP caller's forged identity never reaches the API"
		viaPublicNoCert   = "A caller without a certificate cannot reach the protected host through the public host's connection"
		viaPublicTrusted  = "A trusted caller's request for the protected host through the public host's connection is refused or verified"
		withoutSNI        = "A caller without a certificate cannot reach the protected host over a connection without SNI"
		viaPublicH2       = "An HTTP/2 connection first used for the public host does not serve the protected host unverified"
		bigMandatory      = "Mandatory mode: a certificate header above 8 KiB arrives whole or the call is refused with a 4xx"
		bigOptional       = "Optional mode: a certificate header above 8 KiB arrives whole or the call is refused with a 4xx"
		trustedTLS12      = "A trusted caller gets the product list over TLS 1.2"
		trustedTLS13      = "A trusted caller gets the product list over TLS 1.3"
	)

	conformant := []struct {
		name, conf, mode string
		plain            bool // run with --http-target
		extra            []string
		want             map[string]contract.Status
		evidence         map[string]string // scenario: what one of its checks says
	}{
		{"nginx Mandatory with echo backend", "nginx-mandatory.conf", "mandatory", true, []string{"--echo-path", "/echo"}, map[string]contract.Status{
			"A caller without a certificate gets the 400 page":                                    contract.Passed,
			"A caller without a certificate never reaches the API":                                contract.Passed,
			"A trusted CA-signed certificate gets the product list":                               contract.Passed,
			"A trusted but expired certificate is refused":                                        contract.Passed,
			"A trusted caller's identity is forwarded":                                            contract.Passed,
			"Headers forged by a trusted caller are replaced":                                     contract.Passed,
			"A partner using a PKCS#12 bundle gets the product list":                              contract.Passed,
			"Trust is by CA, not by identity: any leaf of the intermediate passes (someone-else)": contract.Passed,
			"The presented leaf is forwarded URL-encoded in the default header":                   contract.Passed,
			"A caller without a certificate reaches the API marked NONE":                          contract.NotApplicable,
			"Mandatory mode refuses a revoked certificate":                                        contract.NotApplicable,
			// nginx drops names with "_" and replaces other cases (C18);
			// its plain port redirects (C19); one server, so a handshake
			// without SNI asks for the certificate too (C20).
			smuggledTrusted: contract.Passed,
			smuggledTwice:   contract.Passed,
			smuggledNoCert:  contract.Passed,
			plainMandatory:  contract.Passed,
			withoutSNI:      contract.Passed,
			viaPublicNoCert: contract.NotApplicable,
			bigMandatory:    contract.Passed,
			trustedTLS12:    contract.Passed,
			trustedTLS13:    contract.Passed,
		}, map[string]string{plainMandatory: "plain HTTP redirected (301) to https://localhost:8443/echo"}},
		{"nginx Mandatory without echo backend", "nginx-mandatory.conf", "mandatory", false, nil, map[string]contract.Status{
			"A caller without a certificate gets the 400 page":                           contract.Passed,
			"A caller with an untrusted certificate is refused: issued by an unknown CA": contract.Passed,
			"A trusted CA-signed certificate gets the product list":                      contract.Passed,
			"A caller without a certificate never reaches the API":                       contract.NotApplicable,
			"A trusted caller's identity is forwarded":                                   contract.NotApplicable,
			plainMandatory: contract.NotApplicable,
			trustedTLS13:   contract.Passed,
		}, nil},
		{"nginx Optional with echo backend", "nginx-optional.conf", "optional", false, []string{"--echo-path", "/echo", "--profile", "reference-nginx"}, map[string]contract.Status{
			"A caller without a certificate gets the product list":                                                  contract.Passed,
			"A caller without a certificate reaches the API marked NONE":                                            contract.Passed,
			"A caller with a trusted certificate reaches the API marked SUCCESS":                                    contract.Passed,
			"Optional mode forwards the same identity on success":                                                   contract.Passed,
			"A caller with an untrusted certificate reaches the API marked exactly FAILED: issued by an unknown CA": contract.Passed,
			"A caller with an expired certificate reaches the API marked FAILED":                                    contract.KnownDeviation,
			smuggledOptNone:   contract.Passed,
			smuggledOptFailed: contract.Passed,
			bigOptional:       contract.Passed,
		}, nil},
		{"nginx Optional without echo backend", "nginx-optional.conf", "optional", false, []string{"--profile", "reference-nginx"}, map[string]contract.Status{
			"A caller without a certificate gets the product list":                                           contract.Passed,
			"A caller with a trusted certificate gets the product list":                                      contract.Passed,
			"A caller with an untrusted certificate still gets the product list: self-signed and not listed": contract.Passed,
			"A caller without a certificate reaches the API marked NONE":                                     contract.NotApplicable,
		}, nil},
		{"HAProxy emulating the DLB", "haproxy-dlb.cfg", "mandatory", false, []string{"--echo-path", "/echo"}, map[string]contract.Status{
			"A caller without a certificate gets the 400 page":                  contract.Passed,
			"A trusted but expired certificate never reaches the API":           contract.Passed,
			"A trusted caller's identity is forwarded":                          contract.Passed,
			"Headers forged by a trusted caller are replaced":                   contract.Passed,
			"The presented leaf is forwarded URL-encoded in the default header": contract.Passed,
			// del-header by regular expression strips every spelling (C18);
			// 64 KiB buffers hold a big certificate's header (C21).
			smuggledTrusted: contract.Passed,
			smuggledTwice:   contract.Passed,
			smuggledNoCert:  contract.Passed,
			bigMandatory:    contract.Passed,
			trustedTLS13:    contract.Passed,
		}, nil},
		{"HAProxy in Optional mode", "haproxy-optional.cfg", "optional", false, []string{"--echo-path", "/echo"}, map[string]contract.Status{
			"A caller without a certificate reaches the API marked NONE":                                            contract.Passed,
			"A caller with an untrusted certificate reaches the API marked exactly FAILED: issued by an unknown CA": contract.Passed,
			"A caller with an expired certificate reaches the API marked FAILED":                                    contract.Passed,
			"Optional mode forwards the same identity on success":                                                   contract.Passed,
			smuggledOptNone:   contract.Passed,
			smuggledOptFailed: contract.Passed,
			bigOptional:       contract.Passed,
		}, nil},
		{"HAProxy verify required", "haproxy-verify-required.cfg", "mandatory", false, []string{"--echo-path", "/echo", "--profile", "tls-alert"}, map[string]contract.Status{
			"A caller without a certificate gets the 400 page":                           contract.KnownDeviation,
			"A caller without a certificate never reaches the API":                       contract.Passed,
			"A caller with an untrusted certificate is refused: issued by an unknown CA": contract.Passed,
			"A trusted caller's identity is forwarded":                                   contract.Passed,
			smuggledTrusted: contract.Passed,
			smuggledNoCert:  contract.Passed,
			bigMandatory:    contract.Passed,
			trustedTLS13:    contract.Passed,
		}, nil},
		{"Apache require, every spelling unset", "apache-mandatory.httpd.conf", "mandatory", false, []string{"--echo-path", "/echo", "--profile", "tls-alert"}, map[string]contract.Status{
			"A caller without a certificate gets the 400 page":                           contract.KnownDeviation,
			"A caller without a certificate never reaches the API":                       contract.Passed,
			"A caller with an untrusted certificate is refused: issued by an unknown CA": contract.Passed,
			"A trusted caller's identity is forwarded":                                   contract.Passed,
			"Headers forged by a trusted caller are replaced":                            contract.Passed,
			"The presented leaf is forwarded URL-encoded in the default header":          contract.Passed,
			smuggledTrusted: contract.Passed,
			smuggledTwice:   contract.Passed,
			smuggledNoCert:  contract.Passed,
			bigMandatory:    contract.Passed,
			trustedTLS12:    contract.Passed,
			trustedTLS13:    contract.Passed,
		}, nil},
		// Two servers on 8443, the public one the default: a handshake
		// without SNI gets its settings, which ask for no certificate. As
		// measured, nginx closes every way around the protected host's
		// check. A request whose Host names the protected server on a
		// connection whose SNI chose another gets 421, over HTTP/1.1 and
		// HTTP/2 alike, because the protected server verifies clients.
		// Without SNI there is no name to compare, but the protected
		// server checks "no required certificate" for the request itself:
		// the 400 page, nothing at the backend.
		{"nginx with a public default host", "nginx-virtual-hosts.conf", "mandatory", false, []string{"--echo-path", "/echo", "--public-host", "public.localhost"}, map[string]contract.Status{
			"A caller without a certificate gets the 400 page":      contract.Passed,
			"A trusted CA-signed certificate gets the product list": contract.Passed,
			"A trusted caller's identity is forwarded":              contract.Passed,
			viaPublicNoCert:  contract.Passed,
			viaPublicTrusted: contract.Passed,
			withoutSNI:       contract.Passed,
			viaPublicH2:      contract.Passed,
		}, map[string]string{
			viaPublicNoCert:  "refused with 421",
			viaPublicTrusted: "refused with 421",
			withoutSNI:       "refused with 400",
			viaPublicH2:      "refused with 421",
		}},
		{"nginx Mandatory, the exact product list given", "nginx-mandatory.conf", "mandatory", false, []string{"--tags", "@C5", "--expect-products", "testdata/live/products.json"}, map[string]contract.Status{
			"A trusted CA-signed certificate gets the product list": contract.Passed,
		}, nil},
		// Other header schemes, each checked in its own (and failing under
		// dlb, below).
		{"nginx in Envoy's XFCC format, scheme envoy-xfcc", "nginx-envoy-xfcc.conf", "optional", false, []string{"--echo-path", "/echo", "--scheme", "envoy-xfcc", "--profile", "reference-nginx"}, map[string]contract.Status{
			"Optional mode forwards the same identity on success":                                                   contract.Passed,
			"A caller with an untrusted certificate reaches the API marked exactly FAILED: issued by an unknown CA": contract.Passed,
			"A caller without a certificate reaches the API marked NONE":                                            contract.Passed,
			"A caller without a certificate cannot claim SUCCESS":                                                   contract.Passed,
			smuggledOptNone: contract.Passed,
		}, map[string]string{
			"Optional mode forwards the same identity on success":        "scheme envoy-xfcc at the backend: X-Forwarded-Client-Cert field Subject, X-Forwarded-Client-Cert field Cert",
			"A caller without a certificate reaches the API marked NONE": "scheme envoy-xfcc at the backend: no X-Forwarded-Client-Cert field Subject, X-Forwarded-Client-Cert field Cert; the scheme sends no verify value",
		}},
		{"nginx as ingress-nginx renders it, scheme ingress-nginx", "nginx-ingress.conf", "mandatory", false, []string{"--echo-path", "/echo", "--scheme", "ingress-nginx"}, map[string]contract.Status{
			"A trusted caller's identity is forwarded":                          contract.Passed,
			"Headers forged by a trusted caller are replaced":                   contract.Passed,
			"The presented leaf is forwarded URL-encoded in the default header": contract.Passed,
			smuggledTrusted: contract.Passed,
		}, map[string]string{
			"A trusted caller's identity is forwarded": "not forwarded in this scheme, not checked: serial",
		}},
		{"HAProxy as an RFC 9440 edge, scheme rfc9440", "haproxy-rfc9440.cfg", "mandatory", false, []string{"--echo-path", "/echo", "--scheme", "rfc9440"}, map[string]contract.Status{
			"A trusted caller's identity is forwarded":                          contract.Passed,
			"Headers forged by a trusted caller are replaced":                   contract.Passed,
			"The presented leaf is forwarded URL-encoded in the default header": contract.Passed,
			smuggledTrusted: contract.Passed,
		}, map[string]string{
			"The presented leaf is forwarded URL-encoded in the default header": "Client-Cert: the presented certificate as rfc9440",
		}},
	}
	conformant = append(conformant, struct {
		name, conf, mode string
		plain            bool
		extra            []string
		want             map[string]contract.Status
		evidence         map[string]string
	}{"nginx checking OCSP with the harness's responder", "nginx-ocsp.conf", "mandatory", false, []string{"--echo-path", "/echo", "--ocsp", ocspURL}, map[string]contract.Status{
		// Every certificate the run issues is answered good unless a
		// scenario says otherwise: the rest of the suite passes as before.
		"A trusted CA-signed certificate gets the product list":                               contract.Passed,
		"Trust is by CA, not by identity: any leaf of the intermediate passes (someone-else)": contract.Passed,
		"A trusted but expired certificate is refused":                                        contract.Passed,
		"A certificate the responder calls good is accepted":                                  contract.Passed,
		"A certificate the responder calls revoked is refused":                                contract.Passed,
		"A certificate the responder does not know is refused":                                contract.Passed,
		"A responder that does not answer fails the certificate closed":                       contract.Passed,
		"A responder that answers garbage fails the certificate closed":                       contract.Passed,
		"A good response past its nextUpdate is not trusted":                                  contract.Passed,
	}, map[string]string{"A certificate the responder calls good is accepted": "the load balancer asked the OCSP responder about \"ocsp-good\""}})
	for _, tt := range conformant {
		t.Run("conformant/"+tt.name, func(t *testing.T) {
			t.Parallel() // each a CLI run against its own balancer; they overlap
			code, output, res := liveRun(t, args(t.TempDir(), tt.conf, tt.mode, tt.plain, tt.extra))
			if code != exitOK {
				t.Errorf("exit %d, want 0\n%s", code, output)
			}
			for name, want := range tt.want {
				if got := res[name]; got.Status != want {
					t.Errorf("%q: %s (%s%s), want %s", name, got.Status, got.Reason, got.Error, want)
				}
			}
			for name, says := range tt.evidence {
				if r := res[name]; !slices.ContainsFunc(r.Checks, func(c string) bool { return strings.Contains(c, says) }) {
					t.Errorf("%q: evidence %q does not say %q", name, r.Checks, says)
				}
			}
			for name, r := range res {
				if r.Status == contract.Failed {
					t.Errorf("false alarm on a conformant balancer: %q: %s", name, r.Error)
				}
			}
			// The evidence says which product-list check ran.
			wantCheck := "contents not compared: pass --expect-products"
			if slices.Contains(tt.extra, "--expect-products") {
				wantCheck = "equal to the list in testdata/live/products.json (2 products)"
			}
			if r := res["A trusted CA-signed certificate gets the product list"]; r.Status == contract.Passed &&
				!slices.ContainsFunc(r.Checks, func(c string) bool { return strings.Contains(c, wantCheck) }) {
				t.Errorf("product-list evidence %q does not say %q", r.Checks, wantCheck)
			}
		})
	}

	broken := []struct {
		name, conf, mode string
		plain            bool // run with --http-target
		extra            []string
		caughtBy         string
		says             string
	}{
		{"Mandatory lets callers without a certificate in", "broken-lets-anyone-in.conf", "mandatory", false, nil,
			"A caller without a certificate gets the 400 page", "expected HTTP 400, got HTTP 200"},
		{"Mandatory lets untrusted certificates in", "broken-trusts-any-certificate.conf", "mandatory", false, nil,
			"A caller with an untrusted certificate is refused: issued by an unknown CA", "expected a refusal with HTTP 400, got HTTP 200"},
		{"the API path answers no product list", "broken-wrong-body.conf", "mandatory", false, nil,
			"A trusted CA-signed certificate gets the product list", "not a JSON array but object"},
		{"a balancer that requires certificates, said to be Optional", "nginx-mandatory.conf", "optional", false, nil,
			"A caller without a certificate gets the product list", "expected HTTP 200, got HTTP 400"},
		{"another product list than the one expected", "nginx-mandatory.conf", "mandatory", false, []string{"--expect-products", "testdata/live/other-products.json"},
			"A trusted CA-signed certificate gets the product list", "differs from the list in testdata/live/other-products.json"},
		{"Optional passes FAILED:<reason> unmapped", "broken-unmapped-failed.conf", "optional", false, []string{"--echo-path", "/echo", "--profile", "reference-nginx"},
			"A caller with an untrusted certificate reaches the API marked exactly FAILED: issued by an unknown CA", "FAILED:"},
		{"DNs forwarded in the legacy slash form", "broken-legacy-dn.conf", "optional", false, []string{"--echo-path", "/echo", "--profile", "reference-nginx"},
			"Optional mode forwards the same identity on success", "legacy slash form"},
		{"a client-sent X-SSL-Client-Verify reaches the API", "broken-forgeable-verify.conf", "mandatory", false, []string{"--echo-path", "/echo"},
			"Headers forged by a trusted caller are replaced", "FORGED"},
		// Found by C18–C22 on balancers of this folder that passed before;
		// each file here has one of the faults, the conformant one none.
		{"nginx 1.22 without ssl_protocols: no TLS 1.3", "broken-tls12-only.conf", "mandatory", false, nil,
			trustedTLS13, "protocol version not supported"},
		{"HAProxy deleting exact names: underscore spellings reach the API", "broken-haproxy-underscores.cfg", "mandatory", false, []string{"--echo-path", "/echo"},
			smuggledTrusted, "X-Ssl-Client_verify"},
		{"HAProxy's default 16 KiB buffers: a big certificate's header arrives empty", "broken-haproxy-small-buffer.cfg", "mandatory", false, []string{"--echo-path", "/echo"},
			bigMandatory, "-----BEGIN%20CERTIFICATE-----%0A-----END%20CERTIFICATE-----%0A"},
		{"HAProxy Optional deleting exact names: a caller without a certificate smuggles SUCCESS", "broken-haproxy-optional-underscores.cfg", "optional", false, []string{"--echo-path", "/echo"},
			smuggledOptNone, "x-ssl_client-verify: SUCCESS"},
		// New balancers, each broken in one way its conformant copy is not.
		{"Apache unsetting exact names: underscore spellings reach the API", "broken-apache-underscores.httpd.conf", "mandatory", false, []string{"--echo-path", "/echo", "--profile", "tls-alert"},
			smuggledTrusted, "X-Ssl-Client_verify"},
		{"nginx whose plain port proxies to the API", "broken-plain-port-proxies.conf", "mandatory", true, []string{"--echo-path", "/echo"},
			plainMandatory, "a request without TLS reached the backend with contract headers"},
		// Header schemes: a balancer of another scheme is no dlb balancer,
		// and each scheme's own breakages are caught under it.
		{"ingress-nginx's headers, checked as dlb", "nginx-ingress.conf", "mandatory", false, []string{"--echo-path", "/echo"},
			"A trusted caller's identity is forwarded", "X-SSL-Client-Verify"},
		{"Envoy's XFCC, checked as dlb", "nginx-envoy-xfcc.conf", "optional", false, []string{"--echo-path", "/echo", "--profile", "reference-nginx"},
			"Optional mode forwards the same identity on success", "X-SSL-Client-DN"},
		{"RFC 9440's Client-Cert, checked as dlb", "haproxy-rfc9440.cfg", "mandatory", false, []string{"--echo-path", "/echo"},
			"The presented leaf is forwarded URL-encoded in the default header", "expected one X-WSO2-CLIENT-CERTIFICATE header at the backend, got 0"},
		{"XFCC with the Cert field unquoted", "broken-xfcc-unquoted.conf", "optional", false, []string{"--echo-path", "/echo", "--scheme", "envoy-xfcc", "--profile", "reference-nginx"},
			"Optional mode forwards the same identity on success", "field Cert unquoted"},
		{"RFC 9440 with the chain where the leaf belongs", "broken-haproxy-rfc9440-chain.cfg", "mandatory", false, []string{"--echo-path", "/echo", "--scheme", "rfc9440"},
			"The presented leaf is forwarded URL-encoded in the default header", "2 certificates"},
		{"URL-encoded PEM with raw +", "broken-haproxy-raw-plus.cfg", "mandatory", false, []string{"--echo-path", "/echo"},
			"The presented leaf is forwarded URL-encoded in the default header", `raw "+"`},
		// nginx-ocsp.conf without its two ssl_ocsp lines.
		{"OCSP off, the responder named", "nginx-mandatory.conf", "mandatory", false, []string{"--echo-path", "/echo", "--ocsp", ocspURL, "--tags", "@C24"},
			"A certificate the responder calls revoked is refused", "expected a refusal with HTTP 400, got HTTP 200"},
	}
	for _, tt := range broken {
		t.Run("broken/"+tt.name, func(t *testing.T) {
			t.Parallel() // each a CLI run against its own balancer; they overlap
			// The scenarios of the clauses whose scenario catches it, as a
			// focused self-test runs a mutant: the conformant runs above
			// are the whole suite.
			extra := tt.extra
			if !slices.Contains(extra, "--tags") {
				extra = append(slices.Clone(extra), "--tags", clauseTagsOf(t, tt.caughtBy))
			}
			code, output, res := liveRun(t, args(t.TempDir(), tt.conf, tt.mode, tt.plain, extra))
			if code != exitFailed {
				t.Errorf("exit %d, want 1\n%s", code, output)
			}
			r := res[tt.caughtBy]
			if r.Status != contract.Failed || r.StaleDeviation || !strings.Contains(r.Error, tt.says) {
				t.Errorf("%q: %s %q; want a failure saying %q", tt.caughtBy, r.Status, r.Error, tt.says)
			}
		})
	}

	t.Run("reports/every outcome, read by each format's consumer", func(t *testing.T) {
		// A Mandatory nginx said to be Optional, under the reference-nginx
		// profile and without an echo backend: failures (C8, C10),
		// a deviation (C11), passes and not-applicable scenarios.
		out := t.TempDir()
		code, output, res := liveRun(t, lab.args(out, lbs["nginx-mandatory.conf"].URL, "optional", "--profile", "reference-nginx"))
		if code != exitFailed {
			t.Errorf("exit %d, want 1\n%s", code, output)
		}
		c := checkReportsAgree(t, out, res)
		counts := contract.Counts(slices.Collect(maps.Values(res)))
		if c.Passed == 0 || c.Failed == 0 || counts[contract.KnownDeviation] == 0 || counts[contract.NotApplicable] == 0 {
			t.Errorf("the run lacks an outcome: %v", counts)
		}
	})
	t.Run("reports/a green run reads green", func(t *testing.T) {
		out := t.TempDir()
		code, output, res := liveRun(t, lab.args(out, lbs["haproxy-verify-required.cfg"].URL, "mandatory", "--echo-path", "/echo", "--profile", "tls-alert"))
		if code != exitOK {
			t.Errorf("exit %d, want 0\n%s", code, output)
		}
		if c := checkReportsAgree(t, out, res); c.Failed != 0 {
			t.Errorf("a green run reads as %d failure(s)", c.Failed)
		}
	})

	t.Run("inconclusive/nothing reached the target", func(t *testing.T) {
		code, output, _ := liveRun(t, lab.args(t.TempDir(), lbs["nginx-mandatory.conf"].URL, "optional", "--tags", "@C16"))
		if code != exitInconclusive || !strings.Contains(output, "verified nothing") {
			t.Errorf("exit %d, want 3 saying the run verified nothing\n%s", code, output)
		}
	})
	t.Run("inconclusive/core clauses not applicable", func(t *testing.T) {
		// A truststore of other certificates than the run's: every
		// Mandatory scenario describing it is not applicable.
		code, output, _ := liveRun(t, lab.args(t.TempDir(), lbs["nginx-mandatory.conf"].URL, "mandatory", "--tags", "@C4,@C6,@C16"))
		if code != exitInconclusive || !strings.Contains(output, "core clauses not verified") {
			t.Errorf("exit %d, want 3 naming the core clauses not verified\n%s", code, output)
		}
	})
}

// TestLiveTargetPKCS12FromOpenSSL uses the trusted credential as partners
// send it: a .p12 made by openssl, with OpenSSL 3's default algorithms and
// with -legacy.
func TestLiveTargetPKCS12FromOpenSSL(t *testing.T) {
	harnesstest.RequireDocker(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		if harnesstest.InCI() {
			t.Fatal("openssl is not installed and CI=true: scripts/prereqs.sh installs it")
		}
		t.Skip("SKIPPED — NO OPENSSL: run scripts/prereqs.sh")
	}
	lab := newLiveLab(t)
	url := lab.start(t, "nginx-mandatory.conf").URL
	t.Setenv("TEST_P12_PASSWORD", labP12Password)
	for _, variant := range [][]string{nil, {"-legacy"}} {
		name := "default"
		if variant != nil {
			name = "legacy"
		}
		t.Run(name, func(t *testing.T) {
			p12 := filepath.Join(t.TempDir(), "partner.p12")
			cmd := append([]string{"pkcs12", "-export", "-in", lab.clientCert, "-inkey", lab.clientKey, "-out", p12, "-passout", "pass:" + labP12Password}, variant...)
			if out, err := exec.Command("openssl", cmd...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %v: %v\n%s", cmd, err, out)
			}
			out := t.TempDir()
			code, stdout, stderr := cli(t, "run", "--out", out, "--target", url, "--server-name", "localhost", "--mode", "mandatory",
				"--client-p12", p12, "--client-p12-password-env", "TEST_P12_PASSWORD", "--server-ca", lab.serverCA,
				"--tags", "@C1,@C2,@C5")
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if r := readResults(t, out)["A trusted CA-signed certificate gets the product list"]; r.Status != contract.Passed {
				t.Errorf("trusted credential from %s .p12: %s %s", name, r.Status, r.Error)
			}
		})
	}
}

// startLive stands up the conformant hand-written Mandatory nginx, for
// tests that need one live target.
func startLive(t *testing.T) (*liveLab, string) {
	lab := newLiveLab(t)
	return lab, lab.start(t, "nginx-mandatory.conf").URL
}

// TestLiveTargetsApacheSpellings keeps the hand-written Apache in step with
// the spellings C18 sends: RequestHeader unset takes exact names only.
func TestLiveTargetsApacheSpellings(t *testing.T) {
	data, err := os.ReadFile("testdata/live/apache-mandatory.httpd.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range contract.ContractHeaders("") {
		for _, s := range contract.Spellings(name) {
			if !strings.Contains(string(data), "    RequestHeader unset "+s+"\n") {
				t.Errorf("apache-mandatory.httpd.conf does not unset %s", s)
			}
		}
	}
}

// clauseTagsOf is a tag expression for the clauses of the scenario named
// (an outline's name matches up to its first placeholder).
func clauseTagsOf(t *testing.T, name string) string {
	t.Helper()
	all, err := features.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		prefix, _, outline := strings.Cut(sc.Name, "<")
		if sc.Name == name || outline && strings.HasPrefix(name, prefix) {
			var tags []string
			for _, tag := range sc.Tags {
				if _, ok := contract.ClauseOfTag(tag); ok {
					tags = append(tags, tag)
				}
			}
			if len(tags) == 0 {
				t.Fatalf("scenario %q has no clause tag", name)
			}
			return strings.Join(tags, ",")
		}
	}
	t.Fatalf("no scenario of the suite is named %q", name)
	return ""
}
