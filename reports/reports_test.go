package reports

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/lb/nginx"
)

func sampleRun() contract.RunResult {
	call := contract.CallEvidence{
		Method: "GET", URL: "https://127.0.0.1:1234/echo", Credential: `"CN=partner-a,O=Test Org"`,
		CertificatesSent: 1, CertificateRequested: true, Status: 400, BodyExcerpt: "<html>400 Bad Request</html>",
		BackendChecked: true, BackendSaw: []map[string]string{{"X-Ssl-Client-Verify": "SUCCESS"}},
		ExtraHeaders: map[string]string{"X-Ssl-Client-Verify": "<script>alert(1)</script>"},
	}
	return contract.RunResult{
		Target:  "reference nginx",
		Profile: nginx.Balancer{}.Profile(),
		Wall:    1500 * time.Millisecond,
		Results: []contract.ScenarioResult{
			{Feature: "mandatory", Name: "no certificate", Clauses: []string{"C1"}, Modes: []contract.Mode{contract.Mandatory}, Status: contract.Passed, Calls: []contract.CallEvidence{call}},
			{Feature: "optional", Name: "expired", Clauses: []string{"C11"}, Modes: []contract.Mode{contract.Optional}, Status: contract.KnownDeviation, Reason: "C11: nginx answers 400"},
			{Feature: "headers", Name: "identity", Clauses: []string{"C12"}, Modes: []contract.Mode{contract.Mandatory}, Status: contract.Failed, Error: "expected SUCCESS\n  sent: ..."},
			{Feature: "headers", Name: "identity optional", Clauses: []string{"C12"}, Modes: []contract.Mode{contract.Optional}, Status: contract.NotApplicable, Reason: "needs --echo-path"},
			{Feature: "formats", Name: "p12", Clauses: []string{"C16", "C4"}, Status: contract.Passed},
		},
	}
}

func TestMatrixCombinesPerClauseAndMode(t *testing.T) {
	rows := Matrix(sampleRun().Results)
	got := map[string][]string{}
	for _, r := range rows {
		for _, c := range r.Cells {
			got[r.Clause.ID] = append(got[r.Clause.ID], c.Label())
		}
	}
	want := map[string][]string{
		"C1": {"passed", "—"}, "C11": {"—", "known deviation"}, "C12": {"failed", "not applicable"},
		"C16": {"passed", "passed"}, "C4": {"passed", "passed"},
	}
	for id, w := range want {
		if diff := cmp.Diff(w, got[id]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", id, diff)
		}
	}
	if want := len(contract.Clauses) + len(contract.Facets); len(rows) != want {
		t.Errorf("matrix has %d rows, want %d: C1..C22 and C22's TLS versions", len(rows), want)
	}
}

// TestMatrixShowsEachTLSVersion: C22 fails when either version fails, and
// its facet rows say which.
func TestMatrixShowsEachTLSVersion(t *testing.T) {
	results := []contract.ScenarioResult{
		{Name: "C1 over TLS 1.2", Clauses: []string{"C22"}, Tags: []string{"@C22", "@mandatory", "@tls12"}, Modes: []contract.Mode{contract.Mandatory}, Status: contract.Passed},
		{Name: "C1 over TLS 1.3", Clauses: []string{"C22"}, Tags: []string{"@C22", "@mandatory", "@tls13"}, Modes: []contract.Mode{contract.Mandatory}, Status: contract.Failed},
	}
	got := map[string]string{}
	for _, r := range Matrix(results) {
		got[r.Clause.ID] = r.Cells[0].Label()
	}
	want := map[string]string{"C22": "failed", "C22/TLS1.2": "passed", "C22/TLS1.3": "failed", "C21": "—"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s in Mandatory mode: %q, want %q", id, got[id], w)
		}
	}
}

func TestMarkdownSummary(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, sampleRun()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| C1 | ✅ passed | — |", "| C12 | ❌ failed | ➖ not applicable |", "### Failed", "identity — expected SUCCESS", "### Known deviations"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteRefusesKeyMaterial(t *testing.T) {
	run := sampleRun()
	run.Results[0].Error = "-----BEGIN " + "PRIVATE KEY-----" // spelled in parts: no committed file looks like a key
	dir := t.TempDir()
	if _, err := Write(dir, run); err == nil || !strings.Contains(err.Error(), "key material") {
		t.Fatalf("Write = %v, want a refusal", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written despite the refusal: %d", len(entries))
	}
}

// TestHTMLInHeadlessBrowser loads the report in a real browser: it must run
// its script without console errors, load nothing from outside, and show
// the clause matrix.
func TestHTMLInHeadlessBrowser(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	files, err := Write(dir, sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(files.HTML)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:|//)`).Find(page); m != nil {
		t.Errorf("the report loads an external asset: %s", m)
	}
	if bytes.Contains(page, []byte("<script>alert(1)</script>")) {
		t.Error("a header value reached the page unescaped")
	}
	dom := loadInBrowser(t, browser, files.HTML)
	rows := regexp.MustCompile(`<tr id="clause-C\d+(/TLS1\.[23])?">`).FindAllString(dom, -1)
	if want := len(contract.MatrixRows()); len(rows) != want || want != len(contract.Clauses)+len(contract.Facets) {
		t.Errorf("rendered clause matrix has %d rows, want %d (a row per clause and per facet)", len(rows), want)
	}
	for _, want := range []string{`id="clause-matrix"`, `class="failed"`, `class="known-deviation"`, `class="not-applicable"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
}

// loadInBrowser loads a page in headless Chromium and returns its DOM once
// the page's script has run; a console message fails the test.
func loadInBrowser(t *testing.T, browser, page string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"), "--dump-dom", "file://"+page)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			t.Errorf("console message while loading %s: %s", filepath.Base(page), line)
		}
	}
	dom := stdout.String()
	if !strings.Contains(dom, `data-ready="true"`) {
		t.Errorf("%s: the page's script did not finish (no data-ready on body)", filepath.Base(page))
	}
	return dom
}

// chromium finds the browser, failing in CI when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if harnesstest.InCI() {
			t.Fatal("chromium is not installed and CI=true: scripts/prereqs.sh installs it")
		}
		t.Skip("SKIPPED — NO BROWSER: chromium not installed (scripts/prereqs.sh installs it)")
	}
	return browser
}

func TestMain(m *testing.M) { harnesstest.Main(m) }
