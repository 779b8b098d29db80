package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"mtlsconform/contract"
	"strings"

	"github.com/jstemmer/go-junit-report/v2/junit"
)

// The JUnit file is written from the run's results, so that it means what
// the run means: a passed scenario is a test case with no child, a failure
// a <failure> with the violation, and a known deviation or a not-applicable
// scenario a <skipped> whose message says why. Each test case carries its
// feature as classname and its clause and mode tags as properties.
//
// The library's types have no properties on a test case (Jenkins, GitLab
// and junitparser read them there), so its case and suite are embedded in
// types that add them.

type junitCase struct {
	Properties *[]junit.Property `xml:"properties>property,omitempty"`
	junit.Testcase
}

type junitSuite struct {
	junit.Testsuite
	Cases []junitCase `xml:"testcase"`
}

type junitSuites struct {
	junit.Testsuites
	Suites []junitSuite `xml:"testsuite"`
}

// JUnit renders the run as JUnit XML: one test suite per feature.
func JUnit(r contract.RunResult) ([]byte, error) {
	var doc junitSuites
	doc.Name = "mtlsconform: " + r.Target
	doc.Time = seconds(r.Wall.Seconds())
	byFeature := map[string]int{}
	var suiteTime []float64
	for _, res := range r.Results {
		i, ok := byFeature[res.Feature]
		if !ok {
			i = len(doc.Suites)
			byFeature[res.Feature] = i
			s := junitSuite{}
			s.Name, s.ID = res.Feature, i
			s.File = res.URI
			s.AddProperty("profile", r.Profile.Name)
			s.AddProperty("target", r.Target)
			doc.Suites = append(doc.Suites, s)
			suiteTime = append(suiteTime, 0)
		}
		s := &doc.Suites[i]
		c := junitCase{Testcase: junit.Testcase{Name: res.Name, Classname: res.Feature, Time: seconds(res.Duration.Seconds())}}
		for _, cl := range res.Clauses {
			c.addProperty("clause", cl)
		}
		for _, m := range res.Modes {
			c.addProperty("mode", string(m))
		}
		c.addProperty("tags", strings.Join(res.Tags, " "))
		switch res.Status {
		case contract.Failed:
			first, _, _ := strings.Cut(res.Error, "\n")
			c.Failure = &junit.Result{Message: first, Type: "contract violation", Data: res.Error}
			if res.StaleDeviation {
				c.Failure.Type = "stale profile"
			}
		case contract.KnownDeviation, contract.NotApplicable, contract.NotSupported:
			msg, detail := res.SkipMessage(r.Profile.Name)
			c.Skipped = &junit.Result{Message: msg, Data: detail}
		}
		if len(res.Checks) > 0 {
			c.SystemOut = &junit.Output{Data: "verified:\n- " + strings.Join(res.Checks, "\n- ") + "\n"}
		}
		// The library's AddTestcase keeps the suite's counts.
		s.AddTestcase(c.Testcase)
		s.Testsuite.Testcases = nil
		s.Cases = append(s.Cases, c)
		suiteTime[i] += res.Duration.Seconds()
	}
	for i := range doc.Suites {
		s := &doc.Suites[i]
		s.Time = seconds(suiteTime[i])
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode JUnit XML: %w", err)
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}

func (c *junitCase) addProperty(name, value string) {
	p := junit.Property{Name: name, Value: value}
	if c.Properties == nil {
		c.Properties = &[]junit.Property{}
	}
	*c.Properties = append(*c.Properties, p)
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }
