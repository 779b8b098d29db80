package caddy

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
	"maps"
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
	"mtlsconform/harness"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/lb"
	"mtlsconform/lb/lbtest"
	"mtlsconform/partner"
)

// caddyGoldenConfigs: Caddy has neither a CRL nor a verify-depth option.
func caddyGoldenConfigs() map[string]lb.Config { return lbtest.ConfigsWithoutCRLOrDepth() }

// TestKit runs the conformance kit every implementation runs (go test
// ./lb/caddy -run Kit/golden -update rewrites the golden files after a
// deliberate change; read the diff before committing it).
func TestKit(t *testing.T) {
	lbtest.Run(t, Balancer{}, lbtest.Kit{Ext: "json", Refusal: contract.RefuseMixed, Configs: caddyGoldenConfigs(),
		Files: []string{"caddy.json", "server-chain.pem", "server.key", "truststore.pem"}, Main: "caddy.json"})
}

// TestCaddyRendersItsFiles: caddy.json is JSON.
func TestCaddyRendersItsFiles(t *testing.T) {
	for name, cfg := range caddyGoldenConfigs() {
		r, err := Balancer{}.Render(cfg, lbtest.Server)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(r.Files["caddy.json"]) {
			t.Errorf("%s: caddy.json is not valid JSON", name)
		}
	}
}

// TestCaddyNotSupported: Caddy has no CRL and no verify-depth option, so
// scenarios that need one are reported not supported rather than run
// against a configuration that silently ignores them.
func TestCaddyNotSupported(t *testing.T) {
	base := lb.Config{Mode: contract.Mandatory, Truststore: []byte("trust\n")}
	for name, cfg := range map[string]lb.Config{
		"crl":              {Mode: base.Mode, Truststore: base.Truststore, CRL: []byte("crl\n")},
		"crl optional":     {Mode: contract.Optional, Truststore: base.Truststore, CRL: []byte("crl\n")},
		"depth 1":          {Mode: base.Mode, Truststore: base.Truststore, VerifyDepth: 1},
		"depth 2":          {Mode: base.Mode, Truststore: base.Truststore, VerifyDepth: 2},
		"crl-depth-header": lbtest.Configs()["crl-depth-header"],
	} {
		_, err := Balancer{}.Render(cfg, lbtest.Server)
		if !errors.Is(err, contract.ErrNotSupported) {
			t.Errorf("%s: err = %v, want contract.ErrNotSupported", name, err)
		}
	}
	if _, err := (Balancer{}).Render(base, lbtest.Server); err != nil {
		t.Errorf("without CRL and depth: %v", err)
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
	// The schemes' other encodings (scheme.go): URL-encoded PEM leaving
	// + = / raw, and the serial as hex pairs with colons.
	rawPlus, err := caddyFact(contract.Scheme{Cert: contract.CertHeader{Encoding: contract.URLPEMRawPlus}}, contract.FactCert)
	if err != nil {
		t.Fatal(err)
	}
	colons, err := caddyFact(contract.Scheme{Serial: &contract.SerialHeader{Form: contract.SerialHexColons}}, contract.FactSerial)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		der := base64.StdEncoding.EncodeToString(c.Raw)
		if got, want := applyCaddyReplacements(t, der, rawPlus.replace), strings.NewReplacer("%2B", "+", "%2F", "/", "%3D", "=").Replace(nginxEscaped(c)); got != want {
			t.Errorf("%s: certificate header, + = / raw\n got %q\nwant %q", c.Subject, got, want)
		}
		var pairs []string
		for _, b := range c.SerialNumber.Bytes() {
			pairs = append(pairs, fmt.Sprintf("%02X", b))
		}
		if got, want := applyCaddyReplacements(t, der, colons.replace), strings.Join(pairs, ":"); got != want {
			t.Errorf("%s: serial header with colons %q, want %q", c.Subject, got, want)
		}
		if got, want := applyCaddyReplacements(t, der, caddyEscapedPEMFromDER()), nginxEscaped(c); got != want {
			t.Errorf("%s: certificate header\n got %q\nwant %q", c.Subject, got, want)
		}
		if got, want := applyCaddyReplacements(t, der, caddySerialFromDER()), strings.ToUpper(hex.EncodeToString(c.SerialNumber.Bytes())); got != want {
			t.Errorf("%s: serial header %q, want %q", c.Subject, got, want)
		}
	}
}

// caddyMoved is what a rendered configuration, decoded, must become as a
// slot: every path under lb.ConfDir moved into dir, every server's listen
// address and the redirect's port moved as ports says.
func caddyMoved(v any, dir string, ports map[string]string) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if l, ok := x.([]any); ok && k == "listen" && len(l) == 1 {
				out[k] = []any{ports[l[0].(string)]}
				continue
			}
			out[k] = caddyMoved(x, dir, ports)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = caddyMoved(x, dir, ports)
		}
		return out
	case string:
		if rest, ok := strings.CutPrefix(v, lb.ConfDir+"/"); ok {
			return lb.ConfDir + "/" + dir + "/" + rest
		}
		if rest, ok := strings.CutPrefix(v, caddyRedirectHost+"8443{"); ok {
			return caddyRedirectHost + strings.TrimPrefix(ports[":8443"], ":") + "{" + rest
		}
	}
	return v
}

// TestCaddySlotIsTheRendering: a slot runs the rendered configuration,
// mutations included, with its own ports (TLS, and plain at
// lb.PlainPortOffset above it, which the redirect follows) and folder and
// nothing else changed, and takes every rendered file along.
func TestCaddySlotIsTheRendering(t *testing.T) {
	for name, cfg := range caddyGoldenConfigs() {
		variants := [][]string{nil}
		for mut := range (Balancer{}).Mutations() {
			variants = append(variants, []string{mut})
		}
		for _, muts := range variants {
			what := name + " " + strings.Join(muts, ",")
			cfg.Mutations = muts
			r, err := Balancer{}.Render(cfg, lbtest.Server)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			files, err := Balancer{}.Slot(r, "s07", 8450)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if got, want := slices.Sorted(maps.Keys(files)), []string{"slots/s07/caddy.json", "slots/s07/server-chain.pem", "slots/s07/server.key", "slots/s07/truststore.pem"}; !cmp.Equal(got, want) {
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
			ports := map[string]string{":8443": ":8450", ":8088": fmt.Sprintf(":%d", 8450+lb.PlainPortOffset)}
			if diff := cmp.Diff(caddyMoved(rendered, "slots/s07", ports), slot); diff != "" {
				t.Errorf("%s: the slot is not the rendering moved to its port and folder (-want +got):\n%s", what, diff)
			}
		}
	}
}

// TestCaddySlotRefusesWhatItCannotMove: a rendering Slot does not
// understand is an error, never a slot listening somewhere else.
func TestCaddySlotRefusesWhatItCannotMove(t *testing.T) {
	r, err := Balancer{}.Render(caddyGoldenConfigs()["mandatory"], lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	third := strings.Replace(r.Config, `"servers": {`, `"servers": {"other": {"listen": [":9443"]},`, 1)
	var noPlain caddyConfig
	if err := json.Unmarshal([]byte(r.Config), &noPlain); err != nil {
		t.Fatal(err)
	}
	delete(noPlain.Apps.HTTP.Servers, caddyPlainServer)
	withoutPlain, err := json.MarshalIndent(noPlain, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"not JSON":         r.Config[:len(r.Config)/2],
		"a third server":   third,
		"no plain server":  string(withoutPlain),
		"another port":     strings.Replace(r.Config, `":8443"`, `":9443"`, 1),
		"another plain":    strings.Replace(r.Config, `":8088"`, `":9088"`, 1),
		"two addresses":    strings.Replace(r.Config, `":8443"`, `":8443", ":9443"`, 1),
		"8443 named twice": strings.Replace(r.Config, `"h1",`, `"h1", ":8443",`, 1),
		"8088 named twice": strings.Replace(r.Config, `"h1",`, `"h1", ":8088",`, 1),
	} {
		if text == r.Config {
			t.Fatalf("%s: the edit did not apply", name)
		}
		if _, err := (Balancer{}).Slot(lb.Rendered{Config: text, Files: r.Files}, "s01", 8444); err == nil {
			t.Errorf("%s: Slot accepted it", name)
		}
	}
}

// TestCaddyHostFiles: the shared balancer's main process serves nothing
// and keeps Render's admin and storage settings, and the start script is
// valid sh that the reload and the configuration test run.
func TestCaddyHostFiles(t *testing.T) {
	files := Balancer{}.HostFiles()
	var host map[string]any
	if err := json.Unmarshal(files[caddyHostFile], &host); err != nil {
		t.Fatalf("%s: %v", caddyHostFile, err)
	}
	if _, ok := host["apps"]; ok {
		t.Errorf("%s has apps: the main process must serve nothing", caddyHostFile)
	}
	var rendered map[string]any
	r, err := Balancer{}.Render(caddyGoldenConfigs()["optional"], lbtest.Server)
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
	if cmd := (Balancer{}).HostCommand(); cmd[len(cmd)-1] != lb.ConfDir+"/"+caddyHostFile {
		t.Errorf("HostCommand %v does not run %s", cmd, caddyHostFile)
	}
	for _, cmd := range [][]string{Balancer{}.Reload().Exec, Balancer{}.ConfigTest()} {
		if len(cmd) < 2 || cmd[0] != "sh" || files[strings.TrimPrefix(cmd[1], lb.ConfDir+"/")] == nil {
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
	t.Parallel() // waits on containers, not the CPU: overlaps the others
	if testing.Short() {
		t.Skip("starts containers")
	}
	harnesstest.RequireDocker(t) // fails in CI, skips loudly elsewhere
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := harness.Start(ctx, harness.Options{Implementation: Balancer{}, Logf: t.Logf})
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
	bal, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	const (
		added       = 12
		callerPause = 20 * time.Millisecond
	)
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
				// A pause between calls: calls in flight during every
				// reload are what the check needs, not as many as the
				// CPU allows (6 callers without one made 6,500 calls
				// and slowed every test beside this one).
				select {
				case <-stop:
					return
				case <-time.After(callerPause):
				}
				res, err := env.Caller().Do(ctx, bal.URL, partner.Request{Path: "/dev-portal-xapi/products"})
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
	for i := range added {
		other := pkitest.MustRootCA(t, fmt.Sprintf("Partner %d Root CA", i))
		if _, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Optional, Truststore: pki.Bundle(other.Cert)}); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d calls to the first slot failed while %d slots were added; the first: %s", len(failures), calls, added, failures[0])
	}
	if calls < 2*added {
		t.Errorf("only %d calls to the first slot while %d slots were added: too few to have met every reload", calls, added)
	}
	if st := env.Stats(); st.ContainersStarted != 1+harnesstest.OwnBackendContainers(st) {
		t.Errorf("stats = %+v, want one shared balancer and a backend container if any", st)
	}
	t.Logf("%d calls to the first slot while %d slots were added", calls, added)
}

// caddyDelete does what Caddy 2.6's header delete does to a request's
// headers (modules/caddyhttp/headers, HeaderOps.ApplyTo): the name
// lower-cased; "*" at its end a prefix, at its start a suffix, at both a
// substring, all compared lower-cased; otherwise http.Header.Del, which
// goes through Go's canonical form.
func caddyDelete(h http.Header, names []string) {
	for _, name := range names {
		name = strings.ToLower(name)
		for k := range h {
			lk := strings.ToLower(k)
			switch {
			case strings.HasPrefix(name, "*") && strings.HasSuffix(name, "*"):
				if strings.Contains(lk, name[1:len(name)-1]) {
					delete(h, k)
				}
			case strings.HasPrefix(name, "*"):
				if strings.HasSuffix(lk, name[1:]) {
					delete(h, k)
				}
			case strings.HasSuffix(name, "*"):
				if strings.HasPrefix(lk, name[:len(name)-1]) {
					delete(h, k)
				}
			}
		}
		if !strings.Contains(name, "*") {
			h.Del(name)
		}
	}
}

// caddyForged is what Go's server (Caddy's) files when a caller sends
// every spelling of the contract headers, in three letter cases, twice.
func caddyForged(certHeader string) http.Header {
	h := http.Header{"Accept": {"*/*"}, "X-Request-Id": {"keep"}, "X-Sslish": {"keep"}}
	for _, name := range contract.ContractHeaders(certHeader) {
		for _, sp := range contract.Spellings(name) {
			for _, wire := range []string{sp, strings.ToLower(sp), strings.ToUpper(sp)} {
				h.Add(wire, "forged")
				h.Add(wire, "forged again")
			}
		}
	}
	return h
}

func caddyFold(name string) string { return strings.ReplaceAll(strings.ToLower(name), "_", "-") }

// TestCaddyStripsEverySpelling: the strip route's delete list, applied as
// Caddy applies it, leaves no copy of a contract header in any spelling
// (C18), and nothing else goes; the exact-names-only mutant leaves the
// underscore spellings, so it is a real mutant.
func TestCaddyStripsEverySpelling(t *testing.T) {
	for name, cfg := range caddyGoldenConfigs() {
		c := cfg.WithDefaults()
		for _, muts := range [][]string{nil, {"exact-names-only"}} {
			cfg.Mutations = muts
			r, err := Balancer{}.Render(cfg, lbtest.Server)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							Routes []struct {
								ID     string `json:"@id"`
								Handle []struct {
									Handler string          `json:"handler"`
									Request *caddyHeaderOps `json:"request"`
								} `json:"handle"`
							} `json:"routes"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal([]byte(r.Config), &doc); err != nil {
				t.Fatal(err)
			}
			routes := doc.Apps.HTTP.Servers[caddyServerName].Routes
			if len(routes) == 0 || routes[0].ID != caddyRouteStrip || routes[0].Handle[0].Handler != "headers" {
				t.Fatalf("%s: the TLS server's first route is not %s", name, caddyRouteStrip)
			}
			h := caddyForged(c.CertHeader)
			caddyDelete(h, routes[0].Handle[0].Request.Delete)
			folds := map[string]bool{}
			for _, n := range contract.ContractHeaders(c.CertHeader) {
				folds[caddyFold(n)] = true
			}
			var left []string
			for k := range h {
				if folds[caddyFold(k)] {
					left = append(left, k)
				}
			}
			slices.Sort(left)
			switch {
			case muts == nil && len(left) > 0:
				t.Errorf("%s: copies left after the strip route: %v", name, left)
			case muts != nil && !slices.ContainsFunc(left, func(k string) bool { return strings.Contains(k, "_") }):
				t.Errorf("%s %v: no underscore spelling got through (%v): the mutant changes nothing", name, muts, left)
			}
			for _, k := range []string{"Accept", "X-Request-Id", "X-Sslish"} {
				if h.Get(k) == "" {
					t.Errorf("%s %v: %s was stripped too", name, muts, k)
				}
			}
		}
	}
}

// TestCaddyVirtualHosts: the public host's handshake asks for no
// certificate and is chosen by SNI; every other handshake (no SNI
// included) is the protected host's; strict_sni_host holds the Host to
// the SNI; the public host's route, chosen by Host, sets no contract
// header (C20). Both policies allow TLS 1.2 and 1.3 (C22).
func TestCaddyVirtualHosts(t *testing.T) {
	for name, cfg := range caddyGoldenConfigs() {
		c := caddyRender(cfg.WithDefaults())
		srv := c.Apps.HTTP.Servers[caddyServerName]
		if srv.StrictSNIHost == nil || !*srv.StrictSNIHost {
			t.Errorf("%s: strict_sni_host is not on", name)
		}
		if !slices.Equal(srv.Protocols, []string{"h1", "h2"}) {
			t.Errorf("%s: protocols %v, want h1 and h2", name, srv.Protocols)
		}
		pols := srv.TLSConnectionPolicies
		if len(pols) != 2 {
			t.Fatalf("%s: %d TLS connection policies, want 2", name, len(pols))
		}
		if pub := pols[0]; pub.Match == nil || !slices.Equal(pub.Match.SNI, []string{lb.PublicHost}) || pub.ClientAuthentication != nil {
			t.Errorf("%s: the first policy is not the public host's without client auth: %+v", name, pub)
		}
		if def := pols[1]; def.Match != nil || def.ClientAuthentication == nil || def.ClientAuthentication.Mode != "verify_if_given" || def.DefaultSNI != lb.ServerName {
			t.Errorf("%s: the default policy is not the protected host's: %+v", name, def)
		}
		for i, p := range pols {
			if p.ProtocolMin != "tls1.2" || p.ProtocolMax != "tls1.3" {
				t.Errorf("%s: policy %d allows %s to %s, want tls1.2 to tls1.3", name, i, p.ProtocolMin, p.ProtocolMax)
			}
		}
		var ids []string
		for _, r := range srv.Routes {
			ids = append(ids, r.ID)
		}
		if want := []string{caddyRouteStrip, caddyRoutePublic, caddyRouteCert, caddyRouteNoCert}; !slices.Equal(ids, want) {
			t.Errorf("%s: routes %v, want %v", name, ids, want)
		}
		pub, err := c.route(caddyRoutePublic)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]map[string]any{{"host": []string{lb.PublicHost}}}, pub.Match); diff != "" || !pub.Terminal {
			t.Errorf("%s: the public route is not chosen by Host alone, or not terminal:\n%s", name, diff)
		}
		p, err := handlerOf[*caddyProxyHandler](pub)
		if err != nil || p.Headers.Request != nil {
			t.Errorf("%s: the public route's proxy edits headers or is missing (%v)", name, err)
		}
	}
}

// TestCaddyPlainRedirects: the plain server only redirects to the TLS
// port, and a slot's redirect names the slot's TLS port (C19).
func TestCaddyPlainRedirects(t *testing.T) {
	c := caddyRender(lb.Config{Mode: contract.Optional, Truststore: []byte("t")}.WithDefaults())
	srv := c.Apps.HTTP.Servers[caddyPlainServer]
	if srv == nil || !slices.Equal(srv.Listen, []string{":8088"}) || len(srv.TLSConnectionPolicies) > 0 || len(srv.Routes) != 1 {
		t.Fatalf("plain server %+v: want one route on :8088 without TLS", srv)
	}
	redirect, err := handlerOf[*caddyStaticResponse](srv.Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://{http.request.host}:8443{http.request.uri}"; redirect.StatusCode != http.StatusPermanentRedirect || len(srv.Routes[0].Handle) != 1 ||
		!slices.Equal(redirect.Headers["Location"], []string{want}) {
		t.Errorf("plain route %+v: want only a 308 to %s", redirect, want)
	}
	r, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t")}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Balancer{}.Slot(r, "s02", 8452)
	if err != nil {
		t.Fatal(err)
	}
	text := string(files["slots/s02/caddy.json"])
	for _, want := range []string{`":8452"`, `":18452"`, `https://{http.request.host}:8452{http.request.uri}`} {
		if !strings.Contains(text, want) {
			t.Errorf("the slot has no %s", want)
		}
	}
	if strings.Contains(text, "8443") || strings.Contains(text, "8088") {
		t.Error("the slot still names 8443 or 8088")
	}
}

// TestCaddyCutMutantCutsAt8K: the cut mutant's last replacement compiles
// (Go's regexp allows repeat counts up to 1000) and cuts the header to
// exactly 8 KiB, leaving a shorter one whole.
func TestCaddyCutMutantCutsAt8K(t *testing.T) {
	cfg := caddyGoldenConfigs()["mandatory"]
	cfg.Mutations = []string{"cert-header-cut-at-8k"}
	c := caddyRender(cfg.WithDefaults())
	if _, err := caddyMutations()["cert-header-cut-at-8k"].Apply(c, cfg); err != nil {
		t.Fatal(err)
	}
	p, err := c.certProxy()
	if err != nil {
		t.Fatal(err)
	}
	reps := p.Headers.Request.Replace[contract.DefaultCertHeader]
	cut := reps[len(reps)-1:]
	if got := applyCaddyReplacements(t, strings.Repeat("a", 9000), cut); len(got) != 8192 {
		t.Errorf("a 9000-byte header became %d bytes, want 8192", len(got))
	}
	if got := applyCaddyReplacements(t, strings.Repeat("a", 8000), cut); len(got) != 8000 {
		t.Errorf("an 8000-byte header became %d bytes, want it whole", len(got))
	}
}
