package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mtlsconform/fixtures/pki"
	"mtlsconform/harness"
	"mtlsconform/steps"
)

// cli runs the command in-process and returns its exit status and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func readResults(t *testing.T, dir string) map[string]steps.ScenarioResult {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []steps.ScenarioResult `json:"results"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]steps.ScenarioResult{}
	for _, r := range doc.Results {
		out[r.Name] = r
	}
	return out
}

// noKeyMaterial checks every file in dir and the given output for keys.
func noKeyMaterial(t *testing.T, dir string, outputs ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			t.Errorf("%s contains key material", e.Name())
		}
	}
	for _, o := range outputs {
		if strings.Contains(o, "PRIVATE KEY") {
			t.Error("command output contains key material")
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "Usage:"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"run", "--format", "xml"}, "use none, progress or pretty"},
		{[]string{"run", "--concurrency", "0"}, "1 or more"},
		{[]string{"run", "--target", "https://127.0.0.1:9"}, "--target needs --mode"},
		{[]string{"run", "--mode", "mandatory"}, "only applies with --target"},
		{[]string{"run", "--target", "https://127.0.0.1:9", "--mode", "sideways"}, "unknown mode"},
		{[]string{"run", "--target", "https://127.0.0.1:9", "--mode", "mandatory", "--insecure-skip-verify"}, "needs a client credential"},
		{[]string{"run", "--target", "https://127.0.0.1:9", "--mode", "mandatory"}, "needs --server-ca"},
		{[]string{"run", "--profile", "nope"}, "unknown profile"},
		{[]string{"run", "stray"}, "unexpected argument"},
		{[]string{"onboard", "--partner-cert", "x.pem"}, "--truststore is required"},
	}
	for _, tt := range tests {
		code, _, stderr := cli(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestRunReference is the README's main job on a slice of the suite.
func TestRunReference(t *testing.T) {
	harness.RequireDocker(t)
	dir := t.TempDir()
	code, stdout, stderr := cli(t, "run", "--out", dir, "--tags", "@C1,@C11,@C16")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"cucumber.json", "junit.xml", "report.html", "summary.md", "results.json"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("report %s missing or empty (%v)", f, err)
		}
	}
	res := readResults(t, dir)
	if r := res["A caller without a certificate gets the 400 page"]; r.Status != steps.Passed {
		t.Errorf("C1 scenario: %s %s", r.Status, r.Error)
	}
	if r := res["A caller with an expired certificate reaches the API marked FAILED"]; r.Status != steps.KnownDeviation {
		t.Errorf("C11 scenario: %s, want known deviation", r.Status)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "0 failed") || !strings.Contains(last, "1 known deviation") {
		t.Errorf("last line %q does not give the counts", last)
	}
	if !strings.Contains(stdout, "[ 1]") {
		t.Errorf("no progress lines in output:\n%s", stdout)
	}
	noKeyMaterial(t, dir, stdout, stderr)
}

// TestRunMutationFails shows a broken reference gives exit status 1.
func TestRunMutationFails(t *testing.T) {
	harness.RequireDocker(t)
	dir := t.TempDir()
	code, stdout, _ := cli(t, "run", "--out", dir, "--tags", "@C1", "--mutation", "no-cert-403")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, stdout)
	}
	if !strings.Contains(stdout, "expected HTTP 400, got HTTP 403") {
		t.Errorf("failure does not say what happened:\n%s", stdout)
	}
}

// liveSetup stands up a load balancer from a hand-written nginx.conf (not
// the harness's rendering) and the files a partner and an operator would
// hold for it.
type liveSetup struct {
	url, dir                   string
	clientCert, clientKey, p12 string
	serverCA, caCert, caKey    string
	truststore                 string // what the live target trusts
}

const liveConf = `worker_processes 1;
error_log stderr notice;
pid /tmp/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    map $ssl_client_verify $verify_plain { "~^FAILED" FAILED; default $ssl_client_verify; }
    server {
        listen 8443 ssl;
        ssl_certificate /etc/mtlsconform/tls.crt;
        ssl_certificate_key /etc/mtlsconform/tls.key;
        ssl_client_certificate /etc/mtlsconform/partners.pem;
        ssl_verify_client on;
        ssl_verify_depth 3;
        location / {
            proxy_pass http://productapi:8080;
            proxy_set_header X-SSL-Client-Verify $verify_plain;
            proxy_set_header X-SSL-Client-DN $ssl_client_s_dn;
            proxy_set_header X-SSL-Issuer $ssl_client_i_dn;
            proxy_set_header X-SSL-Client-Serial $ssl_client_serial;
            proxy_set_header X-WSO2-CLIENT-CERTIFICATE $ssl_client_escaped_cert;
        }
    }
}
`

func startLive(t *testing.T) liveSetup {
	t.Helper()
	ctx := context.Background()
	env, err := harness.Start(ctx, harness.Options{Logf: t.Logf})
	if env != nil {
		t.Cleanup(func() { env.Close(ctx) })
	}
	if err != nil {
		t.Fatal(err)
	}
	root := pki.MustRootCA(t, "Live Root CA")
	issuing := root.MustIntermediate(t, "Live Issuing CA")
	partner := issuing.MustClient(t, "live-partner")
	chain, key := env.ServerCredential()
	lb, err := env.CustomLoadBalancer(ctx, map[string][]byte{
		"nginx.conf":   []byte(liveConf),
		"tls.crt":      chain,
		"tls.key":      key,
		"partners.pem": pki.Bundle(issuing.Cert, root.Cert),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := partner.WriteFiles(dir, "partner", "p12-secret")
	if err != nil {
		t.Fatal(err)
	}
	caFiles, err := issuing.WriteFiles(dir, "issuing", "")
	if err != nil {
		t.Fatal(err)
	}
	serverCA := filepath.Join(dir, "server-ca.pem")
	if err := os.WriteFile(serverCA, pki.CertPEM(env.ServerCA.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	truststore := filepath.Join(dir, "partners.pem")
	if err := os.WriteFile(truststore, pki.Bundle(issuing.Cert, root.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return liveSetup{url: lb.URL, dir: dir, clientCert: files.Chain, clientKey: files.Key, p12: files.P12,
		serverCA: serverCA, caCert: caFiles.Chain, caKey: caFiles.Key, truststore: truststore}
}

func TestRunLiveTarget(t *testing.T) {
	harness.RequireDocker(t)
	live := startLive(t)
	out := t.TempDir()
	t.Setenv("TEST_P12_PASSWORD", "p12-secret")
	code, stdout, stderr := cli(t, "run", "--out", out, "--target", live.url, "--server-name", "localhost", "--mode", "mandatory",
		"--client-p12", live.p12, "--client-p12-password-env", "TEST_P12_PASSWORD", "--server-ca", live.serverCA,
		"--echo-path", "/echo", "--ca-cert", live.caCert, "--ca-key", live.caKey)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults(t, out)
	want := map[string]steps.Status{
		"A caller without a certificate gets the 400 page":                                    steps.Passed,
		"A trusted CA-signed certificate gets the product list":                               steps.Passed,
		"A trusted but expired certificate is refused":                                        steps.Passed,
		"A trusted caller's identity is forwarded":                                            steps.Passed,
		"Headers forged by a trusted caller are replaced":                                     steps.Passed,
		"A partner using a PKCS#12 bundle gets the product list":                              steps.Passed,
		"A caller without a certificate reaches the API marked NONE":                          steps.NotApplicable,
		"Pitfall: truststore without the intermediate, client sends only its leaf":            steps.NotApplicable,
		"Mandatory mode refuses a revoked certificate":                                        steps.NotApplicable,
		"Trust is by CA, not by identity: any leaf of the intermediate passes (someone-else)": steps.Passed,
	}
	for name, status := range want {
		if got := res[name]; got.Status != status {
			t.Errorf("%q: %s (%s%s), want %s", name, got.Status, got.Reason, got.Error, status)
		}
	}
	if r := res["A caller without a certificate reaches the API marked NONE"]; !strings.Contains(r.Reason, "optional mode") {
		t.Errorf("not-applicable reason %q does not say why", r.Reason)
	}
	noKeyMaterial(t, out, stdout, stderr)

	// Without the CA key, scenarios needing new leaves are not applicable.
	out2 := t.TempDir()
	code, stdout, _ = cli(t, "run", "--out", out2, "--target", live.url, "--server-name", "localhost", "--mode", "mandatory",
		"--client-cert", live.clientCert, "--client-key", live.clientKey, "--server-ca", live.serverCA, "--tags", "@C5")
	if code != exitOK {
		t.Fatalf("without CA key: exit %d\n%s", code, stdout)
	}
	r := readResults(t, out2)["Trust is by CA, not by identity: any leaf of the intermediate passes (someone-else)"]
	if r.Status != steps.NotApplicable || !strings.Contains(r.Reason, "--ca-key") {
		t.Errorf("second leaf without CA key: %s %q, want not applicable naming --ca-key", r.Status, r.Reason)
	}
}

func TestRunLiveTargetUnreachable(t *testing.T) {
	dir := t.TempDir()
	id := pki.MustSelfSigned(t, "p")
	f, err := id.WriteFiles(dir, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	plain := httptest.NewServer(nil)
	defer plain.Close()
	// A target that accepts connections and never answers.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	tests := []struct{ target, want string }{
		{"https://127.0.0.1:1", "connection refused"},
		{"https://" + strings.TrimPrefix(plain.URL, "http://"), "does not speak TLS"},
		{"https://" + hang.Addr().String(), "no answer within the request timeout"},
	}
	for _, tt := range tests {
		start := time.Now()
		code, _, stderr := cli(t, "run", "--out", t.TempDir(), "--target", tt.target, "--mode", "mandatory",
			"--client-cert", f.Cert, "--client-key", f.Key, "--insecure-skip-verify", "--timeout", "1s")
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 saying %q", tt.target, code, stderr, tt.want)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("%s: took %v despite --timeout 1s", tt.target, took)
		}
	}
}

// TestRunCustomFeatures runs a team's own feature file; a step that does
// not exist fails its scenario with a message naming the step.
func TestRunCustomFeatures(t *testing.T) {
	harness.RequireDocker(t)
	dir := t.TempDir()
	feature := `@mandatory
Feature: our own checks
  @C1
  Scenario: no certificate, our way
    Given the "Partner Root CA" is a root CA
    And the load balancer requires client certificates
    And the truststore holds "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products without a certificate
    Then the response status is 400

  @C2
  Scenario: a typo in a step
    Given the load balancer requires client certificate
`
	if err := os.WriteFile(filepath.Join(dir, "ours.feature"), []byte(feature), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, _ := cli(t, "run", "--features", dir, "--out", out)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, stdout)
	}
	res := readResults(t, out)
	if r := res["no certificate, our way"]; r.Status != steps.Passed {
		t.Errorf("own scenario: %s %s", r.Status, r.Error)
	}
	if r := res["a typo in a step"]; r.Status != steps.Failed || !strings.Contains(r.Error, "step is undefined: the load balancer requires client certificate") {
		t.Errorf("typo scenario: %s %q", r.Status, r.Error)
	}
}
