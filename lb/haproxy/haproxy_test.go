package haproxy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
	"mtlsconform/lb"
	"mtlsconform/lb/lbtest"
)

// haproxyGoldenConfigs are goldenConfigs as HAProxy can render them: it has
// no verify-depth option, so a configuration asking for a depth is pinned
// without it (and TestHAProxyVerifyDepthIsNotSupported covers the refusal).
func haproxyGoldenConfigs(t *testing.T) map[string]lb.Config {
	t.Helper()
	out := map[string]lb.Config{}
	for name, cfg := range lbtest.Configs() {
		if cfg.VerifyDepth != 0 {
			if _, err := (Balancer{}).Render(cfg, lbtest.Server); !errors.Is(err, contract.ErrNotSupported) {
				t.Fatalf("%s: verify depth %d rendered with error %v, want contract.ErrNotSupported", name, cfg.VerifyDepth, err)
			}
			cfg.VerifyDepth = 0
			name = strings.Replace(name, "-depth", "", 1)
		}
		out[name] = cfg
	}
	return out
}

// TestKit runs the conformance kit every implementation runs (go test
// ./lb/haproxy -run Kit/golden -update rewrites the golden files after a
// deliberate change; read the diff before committing it).
func TestKit(t *testing.T) {
	lbtest.Run(t, Balancer{}, lbtest.Kit{Ext: "cfg", Refusal: contract.RefuseHTTP400, Configs: haproxyGoldenConfigs(t),
		Files: []string{"crt-list.txt", "haproxy.cfg", "server.pem", "truststore.pem"}, Main: "haproxy.cfg"})
}

// TestHAProxyRendersItsFiles: HAProxy's own files, as it reads them.
func TestHAProxyRendersItsFiles(t *testing.T) {
	for name, cfg := range haproxyGoldenConfigs(t) {
		r, err := Balancer{}.Render(cfg, lbtest.Server)
		if err != nil {
			t.Fatal(err)
		}
		// HAProxy reads the certificate, its chain and the key from one file.
		if got, want := string(r.Files["server.pem"]), "server chain\nserver key\n"; got != want {
			t.Errorf("%s: server.pem is %q, want chain then key %q", name, got, want)
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
		lb.ConfDir + "/server.pem " + lb.ServerName,
		lb.ConfDir + "/server.pem [verify none] " + lb.PublicHost,
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
		r, err := Balancer{}.Render(cfg, lbtest.Server)
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
		for _, h := range append(contract.ContractHeaders(cfg.CertHeader), contract.DefaultCertHeader) {
			for _, sp := range contract.Spellings(h) {
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
		r, err := Balancer{}.Render(cfg, lbtest.Server)
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
		if !strings.Contains(string(Balancer{}.HostFiles()["host.cfg"]), want) {
			t.Errorf("the shared balancer's host.cfg has no %q", want)
		}
	}
}

// TestHAProxySlotMovesEveryListener: a slot's TLS and plain listeners, its
// redirect, its proxies' names and its crt-list move with it, mutations
// included.
func TestHAProxySlotMovesEveryListener(t *testing.T) {
	for _, muts := range [][]string{nil, {"plain-port-proxies"}, {"verify-by-sni"}} {
		cfg := lbtest.Configs()["mandatory"]
		cfg.Mutations = muts
		r, err := Balancer{}.Render(cfg, lbtest.Server)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Balancer{}.Slot(r, "s07", 8450)
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
		if got, want := string(files["slots/s07/crt-list.txt"]), strings.ReplaceAll(haproxyCrtList(), lb.ConfDir+"/", lb.ConfDir+"/slots/s07/"); got != want {
			t.Errorf("%v: the slot's crt-list.txt is %q, want %q", muts, got, want)
		}
	}
}

// TestHAProxyServerPEMWithoutTrailingNewline: the key must not be glued to
// the chain's END line.
func TestHAProxyServerPEMWithoutTrailingNewline(t *testing.T) {
	r, err := Balancer{}.Render(lbtest.Configs()["mandatory"], lb.ServerFiles{Chain: []byte("chain"), Key: []byte("key\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Files["server.pem"]); got != "chain\nkey\n" {
		t.Errorf("server.pem is %q, want %q", got, "chain\nkey\n")
	}
}

func TestHAProxyVerifyDepthIsNotSupported(t *testing.T) {
	for _, depth := range []int{1, 2, 3} {
		for _, mode := range contract.Modes {
			_, err := Balancer{}.Render(lb.Config{Mode: mode, Truststore: []byte("trust\n"), VerifyDepth: depth}, lbtest.Server)
			if !errors.Is(err, contract.ErrNotSupported) {
				t.Errorf("verify depth %d in %s mode: error %v, want contract.ErrNotSupported", depth, mode, err)
			}
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
