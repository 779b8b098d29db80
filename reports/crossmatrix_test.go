package reports

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
)

func sampleDocs() []contract.Document {
	a := sampleRun()
	a.Implementation = "nginx"
	b := sampleRun()
	b.Implementation, b.Profile = "caddy", contract.GenericTLSAlert
	b.Results = append([]contract.ScenarioResult(nil), b.Results...)
	b.Results[2] = contract.ScenarioResult{Feature: "revocation", Name: "revoked", Clauses: []string{"C12"}, Modes: []contract.Mode{contract.Mandatory},
		Status: contract.NotSupported, Reason: "caddy: no CRL option"}
	return []contract.Document{contract.NewDocument(a), contract.NewDocument(b)}
}

func TestCrossMatrixPutsRunsSideBySide(t *testing.T) {
	m := BuildCrossMatrix(sampleDocs())
	got := map[string][]string{}
	for _, row := range m.Rows {
		for _, cells := range row.Cells {
			for _, c := range cells {
				got[row.Clause.ID] = append(got[row.Clause.ID], c.Label())
			}
		}
	}
	want := map[string][]string{
		"C1":  {"passed", "—", "passed", "—"},
		"C12": {"failed", "not applicable", "not supported", "not applicable"},
		"C11": {"—", "known deviation", "—", "known deviation"},
	}
	for id, w := range want {
		if diff := cmp.Diff(w, got[id]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", id, diff)
		}
	}
	if m.Failed() != 1 || len(m.Columns) != 2 || m.Columns[1].Name != "caddy" {
		t.Errorf("columns %+v, failed %d", m.Columns, m.Failed())
	}
	var md strings.Builder
	if err := CrossMarkdown(&md, m); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"| C12 | ❌ | ➖ | 🚫 | ➖ |", "caddy C12, mandatory mode, not supported: caddy: no CRL option"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("matrix.md lacks %q:\n%s", w, md.String())
		}
	}
}

// TestCrossMatrixHTMLInHeadlessBrowser loads matrix.html as report.html is
// loaded: no console message, the script ran, one row per clause.
func TestCrossMatrixHTMLInHeadlessBrowser(t *testing.T) {
	browser := chromium(t)
	files, err := CrossFiles(BuildCrossMatrix(sampleDocs()))
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "matrix.html")
	if err := os.WriteFile(page, files["matrix.html"], 0o644); err != nil {
		t.Fatal(err)
	}
	dom := loadInBrowser(t, browser, page)
	if rows := regexp.MustCompile(`<tr id="clause-C\d+">`).FindAllString(dom, -1); len(rows) != len(contract.Clauses) {
		t.Errorf("matrix has %d rows, want %d", len(rows), len(contract.Clauses))
	}
	for _, want := range []string{`class="not-supported"`, `class="known-deviation"`, `class="failed"`, `>caddy</th>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered matrix lacks %s", want)
		}
	}
}

func TestReadDocumentRefusesOtherSchemas(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "results.json")
	if err := os.WriteFile(path, []byte(`{"schema_version": 1, "results": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDocument(path); err == nil || !strings.Contains(err.Error(), "schema version 1") {
		t.Errorf("old schema: %v", err)
	}
	if _, err := ReadDocument(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "give the folder") {
		t.Errorf("missing file: %v", err)
	}
}
