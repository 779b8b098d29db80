package harness

import (
	"errors"
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
		wantFiles := []string{"haproxy.cfg", "server.pem", "truststore.pem"}
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
	for _, name := range []string{"optional-for-mandatory", "pass-client-verify", "no-dn-header"} {
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
