package harness

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
)

// haproxyGoldenConfigs are goldenConfigs as HAProxy can render them: it has
// no verify-depth option, so a configuration asking for a depth is pinned
// without it (and TestHAProxyVerifyDepthIsNotSupported covers the refusal).
func haproxyGoldenConfigs(t *testing.T) map[string]LBConfig {
	t.Helper()
	out := map[string]LBConfig{}
	for name, cfg := range goldenConfigs {
		if cfg.VerifyDepth != 0 {
			if _, err := (HAProxy{}).Render(cfg, goldenServer); !errors.Is(err, ErrNotSupported) {
				t.Fatalf("%s: verify depth %d rendered with error %v, want ErrNotSupported", name, cfg.VerifyDepth, err)
			}
			cfg.VerifyDepth = 0
			name = strings.Replace(name, "-depth", "", 1)
		}
		out[name] = cfg
	}
	return out
}

// TestHAProxyRendersGolden compares each rendering with its golden file
// (go test ./harness -run HAProxy -update rewrites them after a deliberate
// change; read the diff before committing it).
func TestHAProxyRendersGolden(t *testing.T) {
	for name, cfg := range haproxyGoldenConfigs(t) {
		r := assertGolden(t, HAProxy{}, name, "cfg", cfg)
		wantFiles := []string{"crt-list.txt", "haproxy.cfg", "server.pem", "truststore.pem"}
		if len(cfg.CRL) > 0 {
			wantFiles = append(wantFiles, "crl.pem")
		}
		if got := sortedKeys(bytesToText(r.Files)); !cmp.Equal(slices.Sorted(slices.Values(wantFiles)), got) {
			t.Errorf("%s: files %v, want %v", name, got, wantFiles)
		}
		// HAProxy reads the certificate, its chain and the key from one file.
		if got, want := string(r.Files["server.pem"]), "server chain\nserver key\n"; got != want {
			t.Errorf("%s: server.pem is %q, want chain then key %q", name, got, want)
		}
		if string(r.Files["haproxy.cfg"]) != r.Config {
			t.Errorf("%s: haproxy.cfg is not the rendered configuration", name)
		}
		if got := string(r.Files["crt-list.txt"]); got != haproxyCrtList() {
			t.Errorf("%s: crt-list.txt is %q", name, got)
		}
	}
}

// TestHAProxyCrtList: the protected host comes first (the default for no
// SNI or an unknown one, with the bind line's certificate request), the
// public host alone asks for no certificate.
func TestHAProxyCrtList(t *testing.T) {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(haproxyCrtList()), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	want := []string{
		lbConfDir + "/server.pem " + ServerName,
		lbConfDir + "/server.pem [verify none] " + PublicHost,
	}
	if !cmp.Equal(lines, want) {
		t.Errorf("crt-list lines %q, want %q", lines, want)
	}
}

// haproxyDelHeaders are the del-header patterns of a rendering, compiled
// as HAProxy's -m reg reads them (these use nothing Go and PCRE differ on).
func haproxyDelHeaders(t *testing.T, conf string) []*regexp.Regexp {
	t.Helper()
	var out []*regexp.Regexp
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "http-request" && f[1] == "del-header" && f[3] == "-m" && f[4] == "reg" {
			out = append(out, regexp.MustCompile(f[2]))
		}
	}
	if len(out) == 0 {
		t.Fatal("no del-header -m reg rule")
	}
	return out
}

// TestHAProxyStripsEverySpelling: every spelling of every contract header
// (and of the default certificate header) is deleted, as HAProxy sees it,
// in lower case (C18); names that only look alike are not.
func TestHAProxyStripsEverySpelling(t *testing.T) {
	for name, cfg := range haproxyGoldenConfigs(t) {
		r, err := HAProxy{}.Render(cfg, goldenServer)
		if err != nil {
			t.Fatal(err)
		}
		pats := haproxyDelHeaders(t, r.Config)
		deleted := func(h string) bool {
			for _, p := range pats {
				if p.MatchString(strings.ToLower(h)) {
					return true
				}
			}
			return false
		}
		for _, h := range append(ContractHeaders(cfg.CertHeader), DefaultCertHeader) {
			for _, sp := range Spellings(h) {
				if !deleted(sp) {
					t.Errorf("%s: %s is not deleted", name, sp)
				}
			}
		}
		for _, h := range []string{"Host", "X-SSLX", "X-WSO2-CLIENT-CERTIFICATES", "XX-WSO2-CLIENT-CERTIFICATE", "X-WSO2-CLIENT"} {
			if deleted(h) {
				t.Errorf("%s: %s is deleted", name, h)
			}
		}
	}
}

func TestHAProxySpelled(t *testing.T) {
	for name, want := range map[string]string{
		"X-WSO2-CLIENT-CERTIFICATE": "^x[-_]wso2[-_]client[-_]certificate$",
		"X_Client.Cert":             "^x[-_]client[.]cert$",
	} {
		if got := haproxySpelled(name, true); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if got := haproxySpelled("X-SSL-", false); got != "^x[-_]ssl[-_]" {
		t.Errorf("X-SSL- prefix: %s", got)
	}
}

// TestHAProxyPublicHostSetsNothing: the public host's backend sets no
// header and refuses nothing, and every contract header is set in the
// partner API's backend alone.
func TestHAProxyPublicHostSetsNothing(t *testing.T) {
	for name, cfg := range haproxyGoldenConfigs(t) {
		r, err := HAProxy{}.Render(cfg, goldenServer)
		if err != nil {
			t.Fatal(err)
		}
		sections := haproxySections(r.Config)
		public := sections["backend publicapi"]
		if len(public) != 1 || !strings.HasPrefix(public[0], "server productapi ") {
			t.Errorf("%s: the public backend is %q, want one server line", name, public)
		}
		for sec, lines := range sections {
			for _, l := range lines {
				if strings.Contains(l, "set-header") && sec != "backend productapi" {
					t.Errorf("%s: %s sets a header: %s", name, sec, l)
				}
			}
		}
		if !slices.Contains(sections["frontend mtls"], haproxyHostCheck) {
			t.Errorf("%s: no 421 for the partner API on the public host's connection", name)
		}
	}
}

// haproxySections maps each section header of haproxy.cfg to its lines,
// comments and blank lines left out.
func haproxySections(conf string) map[string][]string {
	out := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(conf, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case !strings.HasPrefix(line, " "):
			cur = l
			out[cur] = nil
		default:
			out[cur] = append(out[cur], l)
		}
	}
	return out
}

// TestHAProxyBufferBudget: what the partner API's backend may add to a
// request fits the room tune.maxrewrite keeps, and the shared balancer
// runs with the same buffers (a slot cannot carry global settings).
func TestHAProxyBufferBudget(t *testing.T) {
	const armourAndNames = 1024 // BEGIN/END lines, header names, serial, verify
	if haproxyMaxRewrite > haproxyBufSize/2 {
		t.Errorf("tune.maxrewrite %d is more than half of tune.bufsize %d; HAProxy caps it there", haproxyMaxRewrite, haproxyBufSize)
	}
	if n := haproxyCertMax + 2*haproxyDNMax + armourAndNames; n > haproxyMaxRewrite {
		t.Errorf("the headers added may take %d bytes, more than tune.maxrewrite %d", n, haproxyMaxRewrite)
	}
	for _, want := range []string{fmt.Sprintf("tune.bufsize %d\n", haproxyBufSize), fmt.Sprintf("tune.maxrewrite %d\n", haproxyMaxRewrite)} {
		if !strings.Contains(string(HAProxy{}.HostFiles()["host.cfg"]), want) {
			t.Errorf("the shared balancer's host.cfg has no %q", want)
		}
	}
}

// TestHAProxySlotMovesEveryListener: a slot's TLS and plain listeners, its
// redirect, its proxies' names and its crt-list move with it, mutations
// included.
func TestHAProxySlotMovesEveryListener(t *testing.T) {
	for _, muts := range [][]string{nil, {"plain-port-proxies"}, {"verify-by-sni"}} {
		cfg := goldenConfigs["mandatory"]
		cfg.Mutations = muts
		r, err := HAProxy{}.Render(cfg, goldenServer)
		if err != nil {
			t.Fatal(err)
		}
		files, err := HAProxy{}.Slot(r, "s07", 8450)
		if err != nil {
			t.Fatalf("%v: %v", muts, err)
		}
		conf := string(files["slots/s07.cfg"])
		want := []string{"frontend mtls_s07\n", "frontend plain_s07\n", "bind :18450\n", "bind :8450 ",
			"default_backend productapi_s07\n", "use_backend publicapi_s07 if ", "backend productapi_s07\n", "backend publicapi_s07\n"}
		if muts == nil {
			want = append(want, "]:8450%[capture.req.uri]")
		}
		for _, w := range want {
			if !strings.Contains(conf, w) {
				t.Errorf("%v: the slot has no %q:\n%s", muts, w, conf)
			}
		}
		if strings.Contains(conf, "8088") || strings.Contains(conf, "8443") {
			t.Errorf("%v: the slot still names a port of its own configuration:\n%s", muts, conf)
		}
		if got, want := string(files["slots/s07/crt-list.txt"]), strings.ReplaceAll(haproxyCrtList(), lbConfDir+"/", lbConfDir+"/slots/s07/"); got != want {
			t.Errorf("%v: the slot's crt-list.txt is %q, want %q", muts, got, want)
		}
	}
}

// TestHAProxyServerPEMWithoutTrailingNewline: the key must not be glued to
// the chain's END line.
func TestHAProxyServerPEMWithoutTrailingNewline(t *testing.T) {
	r, err := HAProxy{}.Render(goldenConfigs["mandatory"], ServerFiles{Chain: []byte("chain"), Key: []byte("key\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Files["server.pem"]); got != "chain\nkey\n" {
		t.Errorf("server.pem is %q, want %q", got, "chain\nkey\n")
	}
}

// haproxyMutationApplies says whether a mutation has anything to break in a
// configuration: some only concern Mandatory mode or a CRL bundle.
func haproxyMutationApplies(name string, cfg LBConfig) bool {
	switch name {
	case "optional-for-mandatory", "ssl-c-verify-only", "verify-required":
		return cfg.Mode == contract.Mandatory
	case "crl-ignored":
		return len(cfg.CRL) > 0
	}
	// The others concern both modes: the spellings, the plain listener,
	// the public host, the certificate header and the TLS versions.
	return true
}

// TestHAProxyMutationsChangeTheRendering: a mutation that left the
// configuration as it was would be a useless mutant, and one whose target
// text is gone must say so rather than do nothing.
func TestHAProxyMutationsChangeTheRendering(t *testing.T) {
	muts := haproxyMutations()
	if len(muts) == 0 {
		t.Fatal("HAProxy has no mutations")
	}
	for _, name := range []string{"optional-for-mandatory", "pass-client-verify", "no-dn-header",
		"exact-names-only", "plain-port-proxies", "verify-by-sni", "cert-header-cut-at-8k", "tls13-only"} {
		if _, ok := muts[name]; !ok {
			t.Errorf("mutation %s is missing", name)
		}
	}
	for name, m := range muts {
		if m.doc == "" {
			t.Errorf("%s: no description", name)
		}
		for cname, cfg := range haproxyGoldenConfigs(t) {
			base, err := HAProxy{}.Render(cfg, goldenServer)
			if err != nil {
				t.Fatal(err)
			}
			mcfg := cfg
			mcfg.Mutations = []string{name}
			mut, err := HAProxy{}.Render(mcfg, goldenServer)
			if err != nil {
				t.Errorf("%s on %s: %v", name, cname, err)
				continue
			}
			applies := haproxyMutationApplies(name, cfg)
			if applies && withoutComments(mut.Config) == withoutComments(base.Config) {
				t.Errorf("%s on %s: the rendering did not change (comments aside)", name, cname)
			}
			if !applies && mut.Config != base.Config {
				t.Errorf("%s on %s: changed a configuration it does not concern", name, cname)
			}
			if applies && mut.Key == base.Key {
				t.Errorf("%s on %s: same configuration key as the unmutated rendering", name, cname)
			}
			if applies {
				if _, err := m.apply("# nothing to edit\n", cfg.withDefaults()); err == nil {
					t.Errorf("%s on %s: applied to a configuration without what it edits", name, cname)
				}
			}
		}
	}
	if _, err := (HAProxy{}).Render(LBConfig{Mode: contract.Mandatory, Truststore: []byte("t"), Mutations: []string{"nope"}}, goldenServer); err == nil {
		t.Error("an unknown mutation was accepted")
	}
}

func TestHAProxyVerifyDepthIsNotSupported(t *testing.T) {
	for _, depth := range []int{1, 2, 3} {
		for _, mode := range contract.Modes {
			_, err := HAProxy{}.Render(LBConfig{Mode: mode, Truststore: []byte("trust\n"), VerifyDepth: depth}, goldenServer)
			if !errors.Is(err, ErrNotSupported) {
				t.Errorf("verify depth %d in %s mode: error %v, want ErrNotSupported", depth, mode, err)
			}
		}
	}
}

func TestHAProxyRefusesBadConfigurations(t *testing.T) {
	for name, cfg := range map[string]LBConfig{
		"empty truststore":      {Mode: contract.Mandatory},
		"unknown mode":          {Mode: "sometimes", Truststore: []byte("trust\n")},
		"header with a space":   {Mode: contract.Mandatory, Truststore: []byte("trust\n"), CertHeader: "X-Client Cert"},
		"header with a quote":   {Mode: contract.Mandatory, Truststore: []byte("trust\n"), CertHeader: "X-Client'Cert"},
		"header with a percent": {Mode: contract.Mandatory, Truststore: []byte("trust\n"), CertHeader: "X-%[src]"},
	} {
		_, err := HAProxy{}.Render(cfg, goldenServer)
		if err == nil {
			t.Errorf("%s: rendered", name)
		} else if errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: %v is a configuration error, not an unsupported configuration", name, err)
		}
	}
}

func TestHAProxyProfile(t *testing.T) {
	p := HAProxy{}.Profile()
	if p.Name != "reference-haproxy" || p.Refusal != contract.RefuseHTTP400 {
		t.Errorf("profile %q refusing with %q, want reference-haproxy refusing with %q", p.Name, p.Refusal, contract.RefuseHTTP400)
	}
	for _, d := range p.Deviations {
		if d.Reason == "" {
			t.Errorf("deviation %s has no reason", d.Key())
		}
	}
}

// withoutComments drops haproxy.cfg's comment lines: a mutation that only
// edits a comment breaks nothing.
func withoutComments(conf string) string {
	var b strings.Builder
	for _, line := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
