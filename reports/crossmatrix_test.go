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

// TestCrossMatrixSaysWhatPassedInPart: a clause whose scenarios passed
// where the implementation could be configured, and were not supported
// elsewhere, shows both, and the reasons say which is which.
func TestCrossMatrixSaysWhatPassedInPart(t *testing.T) {
	res := []contract.ScenarioResult{
		{Feature: "depth", Name: "chain within depth", Clauses: []string{"C5"}, Modes: []contract.Mode{contract.Mandatory}, Status: contract.Passed},
		{Feature: "depth", Name: "depth 1", Clauses: []string{"C5"}, Modes: []contract.Mode{contract.Mandatory},
			Status: contract.NotSupported, Reason: "haproxy has no verify-depth option"},
		{Feature: "depth", Name: "intermediate-only", Clauses: []string{"C5"}, Modes: []contract.Mode{contract.Optional},
			Status: contract.KnownDeviation, Reason: "C5: an intermediate-only truststore trusts its leaves"},
		{Feature: "depth", Name: "depth 2", Clauses: []string{"C5"}, Modes: []contract.Mode{contract.Optional},
			Status: contract.NotSupported, Reason: "no verify-depth option"},
	}
	m := BuildCrossMatrix([]contract.Document{{SchemaVersion: contract.SchemaVersion, Implementation: "haproxy", Results: res}})
	var c5 []CrossCell
	for _, row := range m.Rows {
		if row.Clause.ID == "C5" {
			c5 = row.Cells[0]
		}
	}
	got := []string{c5[0].Label(), strings.Join(c5[0].Reasons, "; "), c5[1].Label(), strings.Join(c5[1].Reasons, "; ")}
	want := []string{"passed, 1 not supported", "not supported: haproxy has no verify-depth option",
		"known deviation, 1 not supported", "C5: an intermediate-only truststore trusts its leaves; not supported: no verify-depth option"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("C5 cells (-want +got):\n%s", diff)
	}
	var md strings.Builder
	if err := CrossMarkdown(&md, m); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"| C5 | ✅🚫 | ⚠️🚫 |", "haproxy C5, mandatory mode, passed, 1 not supported: not supported: haproxy has no verify-depth option"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("matrix.md lacks %q:\n%s", w, md.String())
		}
	}
	for _, row := range Matrix(res) {
		if got := row.Cells[0].Label(); row.Clause.ID == "C5" && got != "passed, 1 not supported" {
			t.Errorf("the run's own matrix says %q for C5 mandatory, want it passed in part", got)
		}
	}
}
