package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
	"mtlsconform/harness/harnesstest"
)

// outcomeCounts is what each report format says the run did.
type outcomeCounts struct {
	Passed, Failed, Skipped int
}

// countsFromResults is the run's own account: deviations and
// not-applicable scenarios are skipped in every machine format.
func countsFromResults(res map[string]contract.ScenarioResult) outcomeCounts {
	var c outcomeCounts
	for _, r := range res {
		switch r.Status {
		case contract.Passed:
			c.Passed++
		case contract.Failed:
			c.Failed++
		default:
			c.Skipped++
		}
	}
	return c
}

// junitCounts reads junit.xml with python3-junitparser, whose rules match
// Jenkins' and GitLab's; every test case must name its feature.
func junitCounts(t *testing.T, path string) outcomeCounts {
	t.Helper()
	const script = `
import json, sys
from junitparser import JUnitXml, Failure, Skipped, Error
xml = JUnitXml.fromfile(sys.argv[1])
out = {"Passed": 0, "Failed": 0, "Skipped": 0, "Errors": 0, "NoClassname": 0}
for suite in xml:
    for case in suite:
        if not case.classname:
            out["NoClassname"] += 1
        kinds = [type(r) for r in case.result]
        if Error in kinds: out["Errors"] += 1
        elif Failure in kinds: out["Failed"] += 1
        elif Skipped in kinds: out["Skipped"] += 1
        else: out["Passed"] += 1
print(json.dumps(out))
`
	py := "/usr/bin/python3" // Debian's, where python3-junitparser installs
	if err := exec.Command(py, "-c", "import junitparser").Run(); err != nil {
		if harnesstest.InCI() {
			t.Fatalf("python3-junitparser is not installed and CI=true: scripts/prereqs.sh installs it (%v)", err)
		}
		t.Skipf("SKIPPED — NO python3-junitparser (%v): run scripts/prereqs.sh", err)
	}
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatalf("junitparser could not read %s: %v", path, err)
	}
	var got struct{ Passed, Failed, Skipped, Errors, NoClassname int }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Errors != 0 || got.NoClassname != 0 {
		t.Errorf("junit.xml: %d error(s), %d case(s) without classname; want none", got.Errors, got.NoClassname)
	}
	return outcomeCounts{got.Passed, got.Failed, got.Skipped}
}

// cucumberCounts reads cucumber.json, checking the fields the cucumber JSON
// schema requires, and counts scenarios the way report tools do: failed if
// a step failed, skipped if a step was skipped, else passed. A skipped
// scenario must carry its reason as an attachment.
func cucumberCounts(t *testing.T, path string) outcomeCounts {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var features []map[string]any
	if err := json.Unmarshal(data, &features); err != nil {
		t.Fatalf("cucumber.json does not parse: %v", err)
	}
	need := func(what string, m map[string]any, keys ...string) {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("cucumber.json: a %s lacks the required %q", what, k)
			}
		}
	}
	var c outcomeCounts
	for _, f := range features {
		need("feature", f, "uri", "id", "keyword", "name", "line", "elements")
		for _, e := range f["elements"].([]any) {
			el := e.(map[string]any)
			need("scenario", el, "keyword", "name", "line", "type", "steps")
			status, reason := "passed", false
			for _, s := range el["steps"].([]any) {
				st := s.(map[string]any)
				need("step", st, "keyword", "name", "line", "result")
				switch st["result"].(map[string]any)["status"] {
				case "failed":
					status = "failed"
				case "skipped":
					if status != "failed" {
						status = "skipped"
					}
				}
				for _, emb := range asList(st["embeddings"]) {
					if emb.(map[string]any)["name"] == "why-skipped.txt" {
						reason = true
					}
				}
			}
			switch status {
			case "failed":
				c.Failed++
			case "skipped":
				c.Skipped++
				if !reason {
					t.Errorf("cucumber.json: skipped scenario %q carries no reason", el["name"])
				}
			default:
				c.Passed++
			}
		}
	}
	return c
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

var countLine = regexp.MustCompile(`(\d+) scenarios: (\d+) passed, (\d+) failed, (\d+) known deviation\(s\), (\d+) not applicable`)

// countLineCounts reads the count line of summary.md or report.html.
func countLineCounts(t *testing.T, path string) outcomeCounts {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := countLine.FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("%s has no count line", path)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	return outcomeCounts{n(2), n(3), n(4) + n(5)}
}

// checkReportsAgree reads every report of a run with its consumer and
// compares the counts with the run's own.
func checkReportsAgree(t *testing.T, dir string, res map[string]contract.ScenarioResult) outcomeCounts {
	t.Helper()
	want := countsFromResults(res)
	for name, got := range map[string]outcomeCounts{
		"junit.xml (junitparser)": junitCounts(t, filepath.Join(dir, "junit.xml")),
		"cucumber.json":           cucumberCounts(t, filepath.Join(dir, "cucumber.json")),
		"summary.md":              countLineCounts(t, filepath.Join(dir, "summary.md")),
		"report.html":             countLineCounts(t, filepath.Join(dir, "report.html")),
	} {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s disagrees with results.json (-want +got):\n%s", name, diff)
		}
	}
	return want
}
