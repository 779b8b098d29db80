package harness

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
)

// TestApacheRendersGolden compares each rendering with its golden file
// (go test ./harness -run Apache -update rewrites them after a deliberate
// change; read the diff before committing it).
func TestApacheRendersGolden(t *testing.T) {
	for name, cfg := range goldenConfigs {
		r := assertGolden(t, Apache{}, name, "conf", cfg)
		wantFiles := []string{"httpd.conf", "server-chain.pem", "server.key", "truststore.pem"}
		if len(cfg.CRL) > 0 {
			wantFiles = append(wantFiles, "crl.pem")
		}
		if got := sortedKeys(bytesToText(r.Files)); !cmp.Equal(slices.Sorted(slices.Values(wantFiles)), got) {
			t.Errorf("%s: files %v, want %v", name, got, wantFiles)
		}
		if got := string(r.Files["httpd.conf"]); got != r.Config {
			t.Errorf("%s: the httpd.conf file is not the rendered configuration", name)
		}
	}
}

// TestApacheVerifyDepth pins the one translation that is easy to get
// wrong: mod_ssl counts the trust anchor against SSLVerifyDepth and
// OpenSSL's depth (nginx's, the contract's) does not. A depth equal to the
// contract's refuses the chain with two intermediates at depth 2 (measured).
func TestApacheVerifyDepth(t *testing.T) {
	for depth, want := range map[int]string{0: "SSLVerifyDepth        3\n", 1: "SSLVerifyDepth        2\n", 2: "SSLVerifyDepth        3\n", 5: "SSLVerifyDepth        6\n"} {
		r, err := Apache{}.Render(LBConfig{Mode: contract.Optional, Truststore: []byte("t"), VerifyDepth: depth}, goldenServer)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Config, want) {
			t.Errorf("verify depth %d: want %q in the configuration", depth, strings.TrimSpace(want))
		}
	}
}

// TestApacheMutationsChangeTheRendering: a mutation that left the
// configuration as it was would be a useless mutant, and one whose text is
// missing must say so rather than do nothing.
func TestApacheMutationsChangeTheRendering(t *testing.T) {
	onlyMandatory := map[string]bool{"optional-for-mandatory": true, "verify-require": true, "different-400-text": true, "verify-by-sni": true}
	for name := range (Apache{}).Mutations() {
		for cname, cfg := range goldenConfigs {
			base, err := Apache{}.Render(cfg, goldenServer)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Mutations = []string{name}
			mut, err := Apache{}.Render(cfg, goldenServer)
			if err != nil {
				t.Errorf("%s on %s: %v", name, cname, err)
				continue
			}
			applies := (!onlyMandatory[name] || cfg.Mode == contract.Mandatory) && (name != "crl-ignored" || len(cfg.CRL) > 0)
			if applies && mut.Config == base.Config {
				t.Errorf("%s on %s: the rendering did not change", name, cname)
			}
			if !applies && mut.Config != base.Config {
				t.Errorf("%s on %s: the mutation does not apply here, yet the rendering changed", name, cname)
			}
		}
	}
	if _, err := (Apache{}).Render(LBConfig{Mode: contract.Mandatory, Truststore: []byte("t"), Mutations: []string{"nope"}}, goldenServer); err == nil {
		t.Error("an unknown mutation was accepted")
	}
	// Applied twice, a mutation finds its text gone and must fail loudly.
	for name := range (Apache{}).Mutations() {
		cfg := LBConfig{Mode: contract.Mandatory, Truststore: []byte("t"), CRL: []byte("crl"), Mutations: []string{name, name}}
		if _, err := (Apache{}).Render(cfg, goldenServer); err == nil {
			t.Errorf("%s applied twice: no error, so it would also pass silently where its text is missing", name)
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
		c := LBConfig{Mode: contract.Mandatory, Truststore: []byte("t"), CertHeader: header}
		r, err := Apache{}.Render(c, goldenServer)
		if err != nil {
			t.Fatal(err)
		}
		names := ContractHeaders(header)
		if header != "" {
			names = append(names, DefaultCertHeader)
		}
		for _, n := range names {
			for _, sp := range Spellings(n) {
				if got := strings.Count(r.Config, "    RequestHeader unset "+sp+"\n"); got != 2 {
					t.Errorf("cert header %q: %s is unset %d times, want once in each TLS host", header, sp, got)
				}
			}
		}
		c.Mutations = []string{"exact-names-only"}
		mut, err := Apache{}.Render(c, goldenServer)
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
	r, err := Apache{}.Render(LBConfig{Mode: contract.Optional, Truststore: []byte("t")}, goldenServer)
	if err != nil {
		t.Fatal(err)
	}
	hosts := strings.Split(r.Config, "<VirtualHost ")[1:]
	if len(hosts) != 3 {
		t.Fatalf("%d virtual hosts, want 3", len(hosts))
	}
	for i, want := range []struct{ addr, name, verify string }{
		{"*:8443>", ServerName, "SSLVerifyClient       optional_no_ca"},
		{"*:8443>", PublicHost, "SSLVerifyClient       none"},
		{"*:8088>", ServerName, ""},
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
	for _, h := range []string{HeaderVerify, HeaderDN, DefaultCertHeader} {
		if strings.Contains(public, "RequestHeader set "+h) {
			t.Errorf("the public host sets %s", h)
		}
	}
	if strings.Contains(plain, "ProxyPass") || !strings.Contains(plain, "https://%{SERVER_NAME}:8443%{REQUEST_URI} [R=301,L]") {
		t.Errorf("the plain host does not only redirect:\n%s", plain)
	}
}

// TestApacheSlot: a slot moves the TLS port, the plain port (TLS port +
// PlainPortOffset) and the redirect's port together, with or without the
// mutations that reshape the hosts; the Optional slot is pinned.
func TestApacheSlot(t *testing.T) {
	for _, muts := range [][]string{nil, {"verify-by-sni"}, {"plain-port-proxies"}} {
		r, err := Apache{}.Render(LBConfig{Mode: contract.Mandatory, Truststore: []byte("t"), Mutations: muts}, goldenServer)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Apache{}.Slot(r, "s07", 10450)
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
	r, err := Apache{}.Render(goldenConfigs["optional"], goldenServer)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Apache{}.Slot(r, "s07", 8450)
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, filepath.Join("testdata", "golden", "apache-slot-optional.txt"), slotText(files))
}

func TestApacheRefusesBadInput(t *testing.T) {
	for name, cfg := range map[string]LBConfig{
		"empty truststore":   {Mode: contract.Mandatory, Truststore: []byte(" \n")},
		"unknown mode":       {Mode: "sometimes", Truststore: []byte("t")},
		"header with space":  {Mode: contract.Mandatory, Truststore: []byte("t"), CertHeader: "X Cert"},
		"header with quote":  {Mode: contract.Mandatory, Truststore: []byte("t"), CertHeader: `X-Cert"`},
		"header with colon":  {Mode: contract.Mandatory, Truststore: []byte("t"), CertHeader: "X-Cert:"},
		"header with braces": {Mode: contract.Mandatory, Truststore: []byte("t"), CertHeader: "{{.Dir}}"},
	} {
		_, err := Apache{}.Render(cfg, goldenServer)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: reported as not supported (%v); it is bad input", name, err)
		}
	}
}

func TestApacheProfile(t *testing.T) {
	p := Apache{}.Profile()
	if p.Name != "reference-apache" || p.Refusal != contract.RefuseMixed {
		t.Errorf("profile %s refusing by %s, want reference-apache refusing by %s", p.Name, p.Refusal, contract.RefuseMixed)
	}
	seen := map[string]bool{}
	for _, d := range p.Deviations {
		if seen[d.Key()] {
			t.Errorf("deviation %s listed twice: only the first would ever apply", d.Key())
		}
		seen[d.Key()] = true
		if d.Reason == "" {
			t.Errorf("deviation %s has no reason", d.Key())
		}
	}
}
