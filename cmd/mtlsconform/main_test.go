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

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/harness/harnesstest"
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

func readResults(t *testing.T, dir string) map[string]contract.ScenarioResult {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []contract.ScenarioResult `json:"results"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]contract.ScenarioResult{}
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
		{[]string{"run", "--impl", "envoy"}, "unknown implementation \"envoy\""},
		{[]string{"run", "--mutation", "no-such"}, "unknown mutation \"no-such\" of nginx"},
		{[]string{"matrix", "--impl", "envoy"}, "unknown implementation"},
		{[]string{"report", "out/a"}, "give --merge and one or more run folders"},
		{[]string{"report", "--merge", "/nonexistent-run"}, "give the folder a run wrote its reports to"},
		{[]string{"run", "stray"}, "unexpected argument"},
		{[]string{"onboard", "--partner-cert", "x.pem"}, "--truststore is required"},
	}
	for _, tt := range tests {
		code, _, stderr := cli(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying %q", tt.args, code, stderr, tt.want)
		}
	}
	// A wrong flag is one line naming the help, not the flag package's
	// error twice and the whole help; -h is the help.
	for _, args := range [][]string{{"run", "--bogus"}, {"images", "--impl", "x"}, {"images", "nosuch"}, {"report", "--bogus"}} {
		code, _, stderr := cli(t, args...)
		if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; code != exitUsage || lines != 1 || !strings.Contains(stderr, args[0]+" -h lists") {
			t.Errorf("%v: exit %d, %d line(s) %q; want exit 2 and one line naming %s -h", args, code, lines, stderr, args[0])
		}
	}
	if code, _, stderr := cli(t, "images", "-h"); code != exitOK || !strings.Contains(stderr, "build the reference implementations' images") || strings.Contains(stderr, "Flags:") {
		t.Errorf("images -h: exit %d, stderr %q; want its help, without an empty Flags heading", code, stderr)
	}
	// Kept containers are for a developer's repeated runs: never in CI,
	// never against a live target.
	t.Setenv("CI", "true")
	for _, args := range [][]string{{"run", "--warm"}, {"matrix", "--warm"}} {
		if code, _, stderr := cli(t, args...); code != exitUsage || !strings.Contains(stderr, "a CI job must not (CI=true)") {
			t.Errorf("%v with CI=true: exit %d, stderr %q; want exit 2 refusing --warm", args, code, stderr)
		}
	}
	t.Setenv("CI", "")
	if code, _, stderr := cli(t, "run", "--warm", "--target", "https://127.0.0.1:9", "--mode", "mandatory", "--server-ca", "x.pem",
		"--client-cert", "c.pem", "--client-key", "k.pem"); code != exitUsage || !strings.Contains(stderr, "a --target has none") {
		t.Errorf("--warm with --target: exit %d, stderr %q; want exit 2", code, stderr)
	}
}

// TestRunReference is the README's main job on a slice of the suite.
func TestRunReference(t *testing.T) {
	harnesstest.RequireDocker(t)
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
	if r := res["A caller without a certificate gets the 400 page"]; r.Status != contract.Passed {
		t.Errorf("C1 scenario: %s %s", r.Status, r.Error)
	}
	for _, name := range []string{"A caller with an expired certificate reaches the API marked FAILED", "A caller with an expired certificate still gets the product list"} {
		if r := res[name]; r.Status != contract.KnownDeviation {
			t.Errorf("C11 scenario %q: %s, want known deviation", name, r.Status)
		}
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "0 failed") || !strings.Contains(last, "2 known deviation") {
		t.Errorf("last line %q does not give the counts", last)
	}
	if !strings.Contains(stdout, "[ 1]") {
		t.Errorf("no progress lines in output:\n%s", stdout)
	}
	noKeyMaterial(t, dir, stdout, stderr)
}

// TestRunTheOtherWays runs the reference as it runs where the engine's
// network is not reachable and one balancer per configuration is asked
// for: the verdicts are the same, the containers one per configuration.
func TestRunTheOtherWays(t *testing.T) {
	harnesstest.RequireDocker(t)
	code, stdout, stderr := cli(t, "run", "--out", t.TempDir(), "--tags", "@C1,@C8", "--container-per-config", "--publish-ports")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	// C1 is Mandatory, C8 Optional: two configurations, two balancers
	// beside the backend.
	if last := lines[len(lines)-1]; !strings.Contains(last, " 0 failed") || !strings.Contains(last, "3 containers") {
		t.Errorf("last line %q: want no failure and 3 containers", last)
	}
}

// TestRunMutationFails shows a broken reference gives exit status 1.
func TestRunMutationFails(t *testing.T) {
	harnesstest.RequireDocker(t)
	dir := t.TempDir()
	code, stdout, _ := cli(t, "run", "--out", dir, "--tags", "@C1", "--mutation", "no-cert-403")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, stdout)
	}
	if !strings.Contains(stdout, "expected HTTP 400, got HTTP 403") {
		t.Errorf("failure does not say what happened:\n%s", stdout)
	}
}

func TestRunLiveTargetUnreachable(t *testing.T) {
	dir := t.TempDir()
	id := pkitest.MustSelfSigned(t, "p")
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
	// A target that accepts connections and closes them at once (a
	// balancer still starting, a health-check port).
	closer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	go func() {
		for {
			c, err := closer.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tests := []struct{ target, want string }{
		{"https://127.0.0.1:1", "connection refused"},
		{"https://" + strings.TrimPrefix(plain.URL, "http://"), "does not speak TLS"},
		{"https://" + hang.Addr().String(), "no answer within the request timeout"},
		{"https://" + closer.Addr().String(), "accepted the TCP connection, then closed it before answering"},
		{"https://" + closer.Addr().String(), "has finished starting"},
		{"https://" + closer.Addr().String(), "preflight: one GET /dev-portal-xapi/products with the trusted credential"},
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
	harnesstest.RequireDocker(t)
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
	if r := res["no certificate, our way"]; r.Status != contract.Passed {
		t.Errorf("own scenario: %s %s", r.Status, r.Error)
	}
	if r := res["a typo in a step"]; r.Status != contract.Failed || !strings.Contains(r.Error, "step is undefined: the load balancer requires client certificate") {
		t.Errorf("typo scenario: %s %q", r.Status, r.Error)
	}
}

// TestBadFileNamesItsFlag: a file that is not what its flag wants is named
// with the flag, not only by its path.
func TestBadFileNamesItsFlag(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	live := []string{"run", "--target", "https://127.0.0.1:9", "--mode", "mandatory"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--server-ca", junk, "--client-p12", junk}, "--server-ca: " + junk},
		{[]string{"--insecure-skip-verify", "--client-p12", junk}, "--client-p12: " + junk},
		{[]string{"--insecure-skip-verify", "--client-cert", junk, "--client-key", junk}, "--client-cert, --client-key: " + junk},
	} {
		code, _, stderr := cli(t, append(live, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying %q", c.args, code, stderr, c.want)
		}
	}
}
