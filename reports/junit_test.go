package reports

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// junitRead is what a JUnit consumer reads: suites, cases, their outcome
// elements and properties.
type junitRead struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name       string `xml:"name,attr"`
			Classname  string `xml:"classname,attr"`
			Properties []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Error *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnitMeansWhatTheRunMeans(t *testing.T) {
	data, err := JUnit(sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	var doc junitRead
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, data)
	}
	if got, want := [4]int{doc.Tests, doc.Failures, doc.Errors, doc.Skipped}, [4]int{5, 1, 0, 2}; got != want {
		t.Errorf("tests/failures/errors/skipped = %v, want %v", got, want)
	}
	outcome := map[string]string{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			if c.Classname != s.Name || c.Classname == "" {
				t.Errorf("%q: classname %q, want its feature %q", c.Name, c.Classname, s.Name)
			}
			if c.Error != nil {
				t.Errorf("%q has an <error>: only a broken harness is an error", c.Name)
			}
			var props []string
			for _, p := range c.Properties {
				props = append(props, p.Name+"="+p.Value)
			}
			switch {
			case c.Failure != nil:
				outcome[c.Name] = "failure: " + c.Failure.Message
				if !strings.Contains(c.Failure.Text, "sent: ...") {
					t.Errorf("failure body %q lacks the violation", c.Failure.Text)
				}
			case c.Skipped != nil:
				outcome[c.Name] = "skipped: " + c.Skipped.Message
			default:
				outcome[c.Name] = "passed"
			}
			if c.Name == "identity" {
				if diff := cmp.Diff([]string{"clause=C12", "mode=mandatory", "tags="}, props); diff != "" {
					t.Errorf("properties (-want +got):\n%s", diff)
				}
			}
		}
	}
	want := map[string]string{
		"no certificate":    "passed",
		"expired":           "skipped: known deviation of reference-nginx from C11: nginx answers 400",
		"identity":          "failure: expected SUCCESS",
		"identity optional": "skipped: not applicable: needs --echo-path",
		"p12":               "passed",
	}
	if diff := cmp.Diff(want, outcome); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}
