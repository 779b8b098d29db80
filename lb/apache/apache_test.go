package apache

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mtlsconform/contract"
	"mtlsconform/lb"
	"mtlsconform/lb/lbtest"
)

// TestKit runs the conformance kit every implementation runs (go test
// ./lb/apache -run Kit/golden -update rewrites the golden files after a
// deliberate change; read the diff before committing it).
func TestKit(t *testing.T) {
	lbtest.Run(t, Balancer{}, lbtest.Kit{Ext: "conf", Refusal: contract.RefuseMixed,
		Files: []string{"httpd.conf", "server-chain.pem", "server.key", "truststore.pem"}, Main: "httpd.conf"})
}

// TestApacheVerifyDepth pins the one translation that is easy to get
// wrong: mod_ssl counts the trust anchor against SSLVerifyDepth and
// OpenSSL's depth (nginx's, the contract's) does not. A depth equal to the
// contract's refuses the chain with two intermediates at depth 2 (measured).
func TestApacheVerifyDepth(t *testing.T) {
	for depth, want := range map[int]string{0: "SSLVerifyDepth        3\n", 1: "SSLVerifyDepth        2\n", 2: "SSLVerifyDepth        3\n", 5: "SSLVerifyDepth        6\n"} {
		r, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t"), VerifyDepth: depth}, lbtest.Server)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Config, want) {
			t.Errorf("verify depth %d: want %q in the configuration", depth, strings.TrimSpace(want))
		}
	}
}

// TestApacheStripsEverySpelling: mod_headers removes a header by its exact
// name, whatever its letter case, so both TLS hosts name every "-"/"_"
// spelling of every contract header, and of the default certificate
// header when another one is configured (C18). The mutant that names only
// the exact spellings leaves the others in place.
func TestApacheStripsEverySpelling(t *testing.T) {
	for _, header := range []string{"", "X-Client-Cert"} {
		c := lb.Config{Mode: contract.Mandatory, Truststore: []byte("t"), CertHeader: header}
		r, err := Balancer{}.Render(c, lbtest.Server)
		if err != nil {
			t.Fatal(err)
		}
		names := contract.ContractHeaders(header)
		if header != "" {
			names = append(names, contract.DefaultCertHeader)
		}
		for _, n := range names {
			for _, sp := range contract.Spellings(n) {
				if got := strings.Count(r.Config, "    RequestHeader unset "+sp+"\n"); got != 2 {
					t.Errorf("cert header %q: %s is unset %d times, want once in each TLS host", header, sp, got)
				}
			}
		}
		c.Mutations = []string{"exact-names-only"}
		mut, err := Balancer{}.Render(c, lbtest.Server)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(mut.Config, "RequestHeader unset X_SSL_Client_DN\n") || !strings.Contains(mut.Config, "RequestHeader unset X-SSL-Client-DN\n") {
			t.Errorf("exact-names-only: want the exact names alone unset")
		}
	}
}

// TestApacheHosts pins the layout C19 and C20 rest on: the protected host
// first on the TLS port (the default, for a handshake without SNI) with
// HTTP/2, the public host after it asking for no certificate, and a plain
// port that only redirects.
func TestApacheHosts(t *testing.T) {
	r, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t")}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	hosts := strings.Split(r.Config, "<VirtualHost ")[1:]
	if len(hosts) != 3 {
		t.Fatalf("%d virtual hosts, want 3", len(hosts))
	}
	for i, want := range []struct{ addr, name, verify string }{
		{"*:8443>", lb.ServerName, "SSLVerifyClient       optional_no_ca"},
		{"*:8443>", lb.PublicHost, "SSLVerifyClient       none"},
		{"*:8088>", lb.ServerName, ""},
	} {
		h := hosts[i]
		if !strings.HasPrefix(h, want.addr) || !strings.Contains(h, "    ServerName "+want.name+"\n") {
			t.Errorf("virtual host %d is not %s for %s:\n%s", i+1, want.addr, want.name, h)
		}
		if want.verify != "" && (!strings.Contains(h, want.verify+"\n") || !strings.Contains(h, "Protocols h2 http/1.1\n") ||
			!strings.Contains(h, "SSLProtocol -all +TLSv1.2 +TLSv1.3\n")) {
			t.Errorf("TLS virtual host %d lacks %q, HTTP/2 or TLS 1.2 and 1.3", i+1, want.verify)
		}
	}
	public, plain := hosts[1], hosts[2]
	for _, h := range []string{contract.HeaderVerify, contract.HeaderDN, contract.DefaultCertHeader} {
		if strings.Contains(public, "RequestHeader set "+h) {
			t.Errorf("the public host sets %s", h)
		}
	}
	if strings.Contains(plain, "ProxyPass") || !strings.Contains(plain, "https://%{SERVER_NAME}:8443%{REQUEST_URI} [R=301,L]") {
		t.Errorf("the plain host does not only redirect:\n%s", plain)
	}
}

// TestApacheSlot: a slot moves the TLS port, the plain port (TLS port +
// lb.PlainPortOffset) and the redirect's port together, with or without the
// mutations that reshape the hosts; the Optional slot is pinned.
func TestApacheSlot(t *testing.T) {
	for _, muts := range [][]string{nil, {"verify-by-sni"}, {"plain-port-proxies"}} {
		r, err := Balancer{}.Render(lb.Config{Mode: contract.Mandatory, Truststore: []byte("t"), Mutations: muts}, lbtest.Server)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Balancer{}.Slot(r, "s07", 10450)
		if err != nil {
			t.Fatalf("%v: %v", muts, err)
		}
		conf := string(files["slots/s07/httpd.conf"])
		tls, plain := strings.Count(conf, "<VirtualHost *:10450>"), strings.Count(conf, "<VirtualHost *:20450>")
		if !strings.Contains(conf, "Listen 10450\nListen 20450\n") || tls == 0 || plain != 1 || strings.Contains(conf, "8443") || strings.Contains(conf, "8088") {
			t.Errorf("%v: the slot does not move both ports (TLS hosts %d, plain hosts %d):\n%s", muts, tls, plain, conf)
		}
		redirect := strings.Contains(conf, "https://%{SERVER_NAME}:10450%{REQUEST_URI}")
		if redirect == slices.Contains(muts, "plain-port-proxies") {
			t.Errorf("%v: redirect to the slot's TLS port: %v", muts, redirect)
		}
	}
	r, err := Balancer{}.Render(lbtest.Configs()["optional"], lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Balancer{}.Slot(r, "s07", 8450)
	if err != nil {
		t.Fatal(err)
	}
	lbtest.Compare(t, filepath.Join("testdata", "golden", "slot-optional.txt"), lbtest.SlotText(files))
}

// TestApacheSchemeProperties: a team's own scheme renders from its
// properties (legacy DNs through SSLOptions, a hex-colons serial through
// edit*, quoted verify values), and what mod_ssl and mod_headers cannot
// write is "not supported" with the reason, after bad input is refused as
// bad input.
func TestApacheSchemeProperties(t *testing.T) {
	base := func() contract.Scheme {
		return contract.Scheme{
			Name:    "team",
			Verify:  &contract.VerifyHeader{Header: "X-Verify", Success: "ok", Failed: "bad verdict", None: "none-100%"},
			Subject: &contract.DNHeader{Place: contract.Place{Header: "X-Subject"}, Rendering: contract.LegacySlash},
			Issuer:  &contract.DNHeader{Place: contract.Place{Header: "X-Issuer"}, Rendering: contract.LegacySlash},
			Serial:  &contract.SerialHeader{Place: contract.Place{Header: "X-Serial"}, Form: contract.SerialHexColons},
			Cert:    contract.CertHeader{Place: contract.Place{Header: "X-Cert"}, Encoding: contract.Base64DERCert},
		}
	}
	r, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t"), Scheme: base()}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    SSLOptions +LegacyDNStringFormat\n",
		`    RequestHeader set X-Verify "bad verdict" "expr=! %{SSL_CLIENT_VERIFY} in {'NONE', 'SUCCESS'}"` + "\n",
		`    RequestHeader set X-Verify "none-100%%"  "expr=%{SSL_CLIENT_VERIFY} == 'NONE'"` + "\n",
		`    RequestHeader edit* X-Serial "([0-9A-Fa-f]{2})(?=[0-9A-Fa-f])" "$1:"` + "\n",
		`    RequestHeader edit* X-Cert "-----(BEGIN|END) CERTIFICATE-----|\s" ""` + "\n",
	} {
		if !strings.Contains(r.Config, want) {
			t.Errorf("the team's scheme lacks %q", strings.TrimSpace(want))
		}
	}
	for name, change := range map[string]func(*contract.Scheme){
		"decimal serial":  func(s *contract.Scheme) { s.Serial.Form = contract.SerialDecimal },
		"DN as DER":       func(s *contract.Scheme) { s.Subject.Rendering = contract.Base64DER },
		"mixed DN forms":  func(s *contract.Scheme) { s.Issuer.Rendering = contract.RFC2253 },
		"quote in verify": func(s *contract.Scheme) { s.Verify.Failed = `say "no"` },
	} {
		s := base()
		change(&s)
		_, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t"), Scheme: s}, lbtest.Server)
		if !errors.Is(err, contract.ErrNotSupported) {
			t.Errorf("%s: %v, want not supported", name, err)
		}
		_, err = Balancer{}.Render(lb.Config{Mode: contract.Optional, Scheme: s}, lbtest.Server)
		if err == nil || errors.Is(err, contract.ErrNotSupported) {
			t.Errorf("%s without a truststore: %v, want bad input", name, err)
		}
	}
}
