package harness

import (
	"errors"
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
	onlyMandatory := map[string]bool{"optional-for-mandatory": true, "verify-require": true, "different-400-text": true}
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
