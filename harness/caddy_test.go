package harness

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
)

// caddyGoldenConfigs are the shared golden configurations Caddy can be put
// in, and one of its own for the certificate header's name (the shared
// one with a custom name also asks for a CRL and a depth, which Caddy
// does not support).
func caddyGoldenConfigs() map[string]LBConfig {
	out := map[string]LBConfig{
		"header": {Mode: contract.Mandatory, Truststore: []byte("trust\n"), CertHeader: "X-Client-Certificate"},
	}
	for name, cfg := range goldenConfigs {
		if len(cfg.CRL) == 0 && cfg.VerifyDepth == 0 {
			out[name] = cfg
		}
	}
	return out
}

// TestCaddyRendersGolden compares each rendering with its golden file
// (go test ./harness -run Caddy -update rewrites them after a deliberate
// change; read the diff before committing it).
func TestCaddyRendersGolden(t *testing.T) {
	for name, cfg := range caddyGoldenConfigs() {
		r := assertGolden(t, Caddy{}, name, "json", cfg)
		wantFiles := []string{"caddy.json", "server-chain.pem", "server.key", "truststore.pem"}
		if got := sortedKeys(bytesToText(r.Files)); !cmp.Equal(slices.Sorted(slices.Values(wantFiles)), got) {
			t.Errorf("%s: files %v, want %v", name, got, wantFiles)
		}
		if !json.Valid(r.Files["caddy.json"]) {
			t.Errorf("%s: caddy.json is not valid JSON", name)
		}
		if string(r.Files["truststore.pem"]) != string(cfg.Truststore) {
			t.Errorf("%s: truststore.pem is not the team's bundle as given", name)
		}
	}
}

// TestCaddyNotSupported: Caddy has no CRL and no verify-depth option, so
// scenarios that need one are reported not supported rather than run
// against a configuration that silently ignores them.
func TestCaddyNotSupported(t *testing.T) {
	base := LBConfig{Mode: contract.Mandatory, Truststore: []byte("trust\n")}
	for name, cfg := range map[string]LBConfig{
		"crl":              {Mode: base.Mode, Truststore: base.Truststore, CRL: []byte("crl\n")},
		"crl optional":     {Mode: contract.Optional, Truststore: base.Truststore, CRL: []byte("crl\n")},
		"depth 1":          {Mode: base.Mode, Truststore: base.Truststore, VerifyDepth: 1},
		"depth 2":          {Mode: base.Mode, Truststore: base.Truststore, VerifyDepth: 2},
		"crl-depth-header": goldenConfigs["crl-depth-header"],
	} {
		_, err := Caddy{}.Render(cfg, goldenServer)
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: err = %v, want ErrNotSupported", name, err)
		}
	}
	if _, err := (Caddy{}).Render(base, goldenServer); err != nil {
		t.Errorf("without CRL and depth: %v", err)
	}
}

// TestCaddyMutationsChangeTheRendering: a mutation that left the
// configuration as it was would be a useless mutant.
func TestCaddyMutationsChangeTheRendering(t *testing.T) {
	onlyIn := map[string]contract.Mode{"optional-for-mandatory": contract.Mandatory, "no-cert-alert": contract.Mandatory}
	for name := range (Caddy{}).Mutations() {
		for cname, cfg := range caddyGoldenConfigs() {
			base, err := Caddy{}.Render(cfg, goldenServer)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Mutations = []string{name}
			mut, err := Caddy{}.Render(cfg, goldenServer)
			if err != nil {
				t.Errorf("%s on %s: %v", name, cname, err)
				continue
			}
			applies := onlyIn[name] == "" || onlyIn[name] == cfg.Mode
			if applies && mut.Config == base.Config {
				t.Errorf("%s on %s: the rendering did not change", name, cname)
			}
			if !applies && mut.Config != base.Config {
				t.Errorf("%s on %s: changed a %s configuration it does not apply to", name, cname, cfg.Mode)
			}
			if mut.Key == base.Key && mut.Config != base.Config {
				t.Errorf("%s on %s: the configuration key did not change with the configuration", name, cname)
			}
		}
	}
	if _, err := (Caddy{}).Render(LBConfig{Mode: contract.Mandatory, Truststore: []byte("t"), Mutations: []string{"nope"}}, goldenServer); err == nil {
		t.Error("an unknown mutation was accepted")
	}
	// A mutation whose target is gone must say so, not do nothing.
	cfg := caddyRender(LBConfig{Mode: contract.Mandatory, Truststore: []byte("t")}.withDefaults())
	if err := caddyMutations()["no-dn-header"].apply(cfg, LBConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := caddyMutations()["no-dn-header"].apply(cfg, LBConfig{}); err == nil {
		t.Error("no-dn-header applied twice without complaint")
	}
}

// applyCaddyReplacements does what Caddy 2.6's header replacements do to
// one value (modules/caddyhttp/headers: in list order, regular
// expressions through ReplaceAllString, substrings through ReplaceAll).
func applyCaddyReplacements(t *testing.T, v string, reps []caddyReplacement) string {
	t.Helper()
	for _, r := range reps {
		if r.SearchRegexp != "" {
			v = regexp.MustCompile(r.SearchRegexp).ReplaceAllString(v, r.Replace)
		} else {
			v = strings.ReplaceAll(v, r.Search, r.Replace)
		}
	}
	return v
}

// nginxEscaped is $ssl_client_escaped_cert: the PEM with everything outside
// the unreserved set percent-encoded in upper-case hex.
func nginxEscaped(c *x509.Certificate) string {
	var b strings.Builder
	for _, ch := range pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', strings.IndexByte("-._~", ch) >= 0:
			b.WriteByte(ch)
		default:
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

// TestCaddyHeaderReplacements runs the replacement lists on real
// certificates (ECDSA and RSA, serials short and long, with and without
// DER's sign byte, lengths that do and do not fill the last PEM line):
// the certificate header must equal nginx's escaped PEM and the serial
// header the serial in upper-case hex.
func TestCaddyHeaderReplacements(t *testing.T) {
	root := pkitest.MustRootCA(t, "Partner Root CA")
	inter := pkitest.MustIntermediate(t, root, "Partner Issuing CA")
	serial := func(s string) pki.Option {
		return pki.Modify(func(c *x509.Certificate) { c.SerialNumber, _ = new(big.Int).SetString(s, 16) })
	}
	var certs []*x509.Certificate
	for i, opts := range [][]pki.Option{
		nil,
		{pki.WithKeyType(pki.RSA2048)},
		{serial("1")},
		{serial("7f")},
		{serial("80")},
		{serial("ff00")},
		{serial("0123456789abcdef0123456789abcdef01234567")}, // 20 bytes
		{serial("ffffffffffffffffffffffffffffffffffffffff")}, // 20 bytes and a sign byte
	} {
		certs = append(certs, pkitest.MustClient(t, inter, fmt.Sprintf("partner-%d", i), opts...).Cert)
	}
	certs = append(certs, root.Cert, inter.Cert, pkitest.MustSelfSigned(t, "self").Cert)
	// A DER whose base64 fills its last line exactly must not get an
	// empty line before END: issue leaves until one does.
	for i := 0; !slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return base64.StdEncoding.EncodedLen(len(c.Raw))%64 == 0 }); i++ {
		if i == 500 {
			t.Fatal("no certificate filled its last base64 line in 500 tries")
		}
		certs = append(certs, pkitest.MustClient(t, inter, fmt.Sprintf("extra-%d", i)).Cert)
	}
	for _, c := range certs {
		der := base64.StdEncoding.EncodeToString(c.Raw)
		if got, want := applyCaddyReplacements(t, der, caddyEscapedPEMFromDER()), nginxEscaped(c); got != want {
			t.Errorf("%s: certificate header\n got %q\nwant %q", c.Subject, got, want)
		}
		if got, want := applyCaddyReplacements(t, der, caddySerialFromDER()), strings.ToUpper(hex.EncodeToString(c.SerialNumber.Bytes())); got != want {
			t.Errorf("%s: serial header %q, want %q", c.Subject, got, want)
		}
	}
}
