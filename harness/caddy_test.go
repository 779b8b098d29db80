package harness

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// caddyMoved is what a rendered configuration, decoded, must become as a
// slot: every path under lbConfDir moved into dir, and every server's
// listen addresses replaced by listen.
func caddyMoved(v any, dir string, listen []any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if _, ok := x.([]any); ok && k == "listen" {
				out[k] = listen
				continue
			}
			out[k] = caddyMoved(x, dir, listen)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = caddyMoved(x, dir, listen)
		}
		return out
	case string:
		if rest, ok := strings.CutPrefix(v, lbConfDir+"/"); ok {
			return lbConfDir + "/" + dir + "/" + rest
		}
	}
	return v
}

// TestCaddySlotIsTheRendering: a slot runs the rendered configuration,
// mutations included, with its own port and folder and nothing else
// changed, and takes every rendered file along.
func TestCaddySlotIsTheRendering(t *testing.T) {
	for name, cfg := range caddyGoldenConfigs() {
		variants := [][]string{nil}
		for mut := range (Caddy{}).Mutations() {
			variants = append(variants, []string{mut})
		}
		for _, muts := range variants {
			what := name + " " + strings.Join(muts, ",")
			cfg.Mutations = muts
			r, err := Caddy{}.Render(cfg, goldenServer)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			files, err := Caddy{}.Slot(r, "s07", 8450)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if got, want := sortedKeys(bytesToText(files)), []string{"slots/s07/caddy.json", "slots/s07/server-chain.pem", "slots/s07/server.key", "slots/s07/truststore.pem"}; !cmp.Equal(got, want) {
				t.Errorf("%s: files %v, want %v", what, got, want)
			}
			for n, data := range r.Files {
				if n != caddyConfigFile && string(files["slots/s07/"+n]) != string(data) {
					t.Errorf("%s: slots/s07/%s is not the rendered %s", what, n, n)
				}
			}
			var rendered, slot any
			if err := json.Unmarshal([]byte(r.Config), &rendered); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(files["slots/s07/caddy.json"], &slot); err != nil {
				t.Fatalf("%s: the slot's caddy.json: %v", what, err)
			}
			if diff := cmp.Diff(caddyMoved(rendered, "slots/s07", []any{":8450"}), slot); diff != "" {
				t.Errorf("%s: the slot is not the rendering moved to its port and folder (-want +got):\n%s", what, diff)
			}
		}
	}
}

// TestCaddySlotRefusesWhatItCannotMove: a rendering Slot does not
// understand is an error, never a slot listening somewhere else.
func TestCaddySlotRefusesWhatItCannotMove(t *testing.T) {
	r, err := Caddy{}.Render(caddyGoldenConfigs()["mandatory"], goldenServer)
	if err != nil {
		t.Fatal(err)
	}
	twoServers := strings.Replace(r.Config, `"servers": {`, `"servers": {"other": {"listen": [":9443"]},`, 1)
	for name, text := range map[string]string{
		"not JSON":         r.Config[:len(r.Config)/2],
		"two servers":      twoServers,
		"another port":     strings.Replace(r.Config, `":8443"`, `":9443"`, 1),
		"two addresses":    strings.Replace(r.Config, `":8443"`, `":8443", ":9443"`, 1),
		"8443 named twice": strings.Replace(r.Config, `"h1",`, `"h1", ":8443",`, 1),
	} {
		if text == r.Config {
			t.Fatalf("%s: the edit did not apply", name)
		}
		if _, err := (Caddy{}).Slot(Rendered{Config: text, Files: r.Files}, "s01", 8444); err == nil {
			t.Errorf("%s: Slot accepted it", name)
		}
	}
}

// TestCaddyHostFiles: the shared balancer's main process serves nothing
// and keeps Render's admin and storage settings, and the start script is
// valid sh that the reload and the configuration test run.
func TestCaddyHostFiles(t *testing.T) {
	files := Caddy{}.HostFiles()
	var host map[string]any
	if err := json.Unmarshal(files[caddyHostFile], &host); err != nil {
		t.Fatalf("%s: %v", caddyHostFile, err)
	}
	if _, ok := host["apps"]; ok {
		t.Errorf("%s has apps: the main process must serve nothing", caddyHostFile)
	}
	var rendered map[string]any
	r, err := Caddy{}.Render(caddyGoldenConfigs()["optional"], goldenServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(r.Config), &rendered); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"admin", "storage"} {
		if diff := cmp.Diff(rendered[k], host[k]); diff != "" {
			t.Errorf("%s: %s differs from the rendering's (-rendered +host):\n%s", caddyHostFile, k, diff)
		}
	}
	if cmd := (Caddy{}).HostCommand(); cmd[len(cmd)-1] != lbConfDir+"/"+caddyHostFile {
		t.Errorf("HostCommand %v does not run %s", cmd, caddyHostFile)
	}
	for _, cmd := range [][]string{Caddy{}.Reload().Exec, Caddy{}.ConfigTest()} {
		if len(cmd) < 2 || cmd[0] != "sh" || files[strings.TrimPrefix(cmd[1], lbConfDir+"/")] == nil {
			t.Errorf("%v does not run a host file with sh", cmd)
		}
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here to check the script's syntax")
	}
	check := exec.Command(sh, "-n")
	check.Stdin = bytes.NewReader(files[caddyStartFile])
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("%s: sh -n: %v\n%s", caddyStartFile, err, out)
	}
}

// TestCaddySlotsLeaveEachOtherAlone adds slots to a shared Caddy while
// callers keep asking one that runs: none of them may fail. (A single
// Caddy reloaded through its admin endpoint fails this: every reload
// rebinds its listeners and resets connections queued on the old ones.)
func TestCaddySlotsLeaveEachOtherAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers")
	}
	if err := CheckDocker(context.Background()); err != nil {
		t.Skipf("SKIPPED — NO DOCKER: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := Start(ctx, Options{Implementation: Caddy{}, Logf: t.Logf})
	if env != nil {
		defer func() {
			if err := env.Close(context.Background()); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}()
	}
	if err != nil {
		t.Fatal(err)
	}
	root := pkitest.MustRootCA(t, "Partner Root CA")
	lb, err := env.LoadBalancer(ctx, LBConfig{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		calls    int
		failures []string
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := env.Caller().Do(ctx, lb.URL, Request{Path: "/dev-portal-xapi/products"})
				mu.Lock()
				calls++
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case res.Status != http.StatusBadRequest:
					failures = append(failures, res.Outcome())
				}
				mu.Unlock()
			}
		}()
	}
	const added = 12
	for i := range added {
		other := pkitest.MustRootCA(t, fmt.Sprintf("Partner %d Root CA", i))
		if _, err := env.LoadBalancer(ctx, LBConfig{Mode: contract.Optional, Truststore: pki.Bundle(other.Cert)}); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d calls to the first slot failed while %d slots were added; the first: %s", len(failures), calls, added, failures[0])
	}
	if st := env.Stats(); st.ContainersStarted != 2 {
		t.Errorf("stats = %+v, want 2 containers (backend + one shared balancer)", st)
	}
	t.Logf("%d calls to the first slot while %d slots were added", calls, added)
}
