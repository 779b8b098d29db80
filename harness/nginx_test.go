package harness

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var goldenServer = ServerFiles{Chain: []byte("server chain\n"), Key: []byte("server key\n")}

// goldenConfigs are the configurations whose rendering is pinned.
var goldenConfigs = map[string]LBConfig{
	"mandatory": {Mode: contract.Mandatory, Truststore: []byte("trust\n")},
	"optional":  {Mode: contract.Optional, Truststore: []byte("trust\n")},
	"crl-depth-header": {Mode: contract.Mandatory, Truststore: []byte("trust\n"), CRL: []byte("crl\n"),
		VerifyDepth: 3, CertHeader: "X-Client-Certificate"},
}

// assertGolden renders cfg with impl and compares the main configuration
// file with testdata/golden/IMPL-NAME.EXT (go test ./harness -update
// rewrites the golden files after a deliberate change; read the diff
// before committing it).
func assertGolden(t *testing.T, impl Implementation, name, ext string, cfg LBConfig) Rendered {
	t.Helper()
	r, err := impl.Render(cfg, goldenServer)
	if err != nil {
		t.Fatalf("%s %s: %v", impl.Name(), name, err)
	}
	path := filepath.Join("testdata", "golden", impl.Name()+"-"+name+"."+ext)
	if *update {
		if err := os.WriteFile(path, []byte(r.Config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s %s: %v (run with -update to create it)", impl.Name(), name, err)
	}
	if diff := cmp.Diff(string(want), r.Config); diff != "" {
		t.Errorf("%s %s: the rendering differs from %s (-want +got):\n%s", impl.Name(), name, path, diff)
	}
	return r
}

// TestNginxRendersGolden compares each rendering with its golden file
// (go test ./harness -run Golden -update rewrites them after a deliberate
// change; read the diff before committing it).
func TestNginxRendersGolden(t *testing.T) {
	for name, cfg := range goldenConfigs {
		r := assertGolden(t, Nginx{}, name, "conf", cfg)
		wantFiles := []string{"nginx.conf", "server-chain.pem", "server.key", "truststore.pem"}
		if len(cfg.CRL) > 0 {
			wantFiles = append(wantFiles, "crl.pem")
		}
		if got := sortedKeys(bytesToText(r.Files)); !cmp.Equal(slices.Sorted(slices.Values(wantFiles)), got) {
			t.Errorf("%s: files %v, want %v", name, got, wantFiles)
		}
	}
}

// TestNginxMutationsChangeTheRendering: a mutation that left the
// configuration as it was would be a useless mutant.
func TestNginxMutationsChangeTheRendering(t *testing.T) {
	for name := range (Nginx{}).Mutations() {
		for cname, cfg := range goldenConfigs {
			base, err := Nginx{}.Render(cfg, goldenServer)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Mutations = []string{name}
			mut, err := Nginx{}.Render(cfg, goldenServer)
			if err != nil {
				t.Errorf("%s on %s: %v", name, cname, err)
				continue
			}
			onlyIn := map[string]contract.Mode{"optional-for-mandatory": contract.Mandatory, "optional-no-ca-for-mandatory": contract.Mandatory,
				"no-cert-403": contract.Mandatory, "no-cert-495": contract.Mandatory, "different-400-text": contract.Mandatory,
				"verify-by-sni": contract.Mandatory}
			applies := (onlyIn[name] == "" || onlyIn[name] == cfg.Mode) && (name != "crl-ignored" || len(cfg.CRL) > 0)
			if applies && mut.Config == base.Config {
				t.Errorf("%s on %s: the rendering did not change", name, cname)
			}
		}
	}
	if _, err := (Nginx{}).Render(LBConfig{Mode: contract.Mandatory, Truststore: []byte("t"), Mutations: []string{"nope"}}, goldenServer); err == nil {
		t.Error("an unknown mutation was accepted")
	}
}

func bytesToText(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}
