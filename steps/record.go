package steps

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
)

// Status is a scenario's verdict.
type Status string

const (
	Passed         Status = "passed"
	Failed         Status = "failed"
	KnownDeviation Status = "known deviation"
	NotApplicable  Status = "not applicable"
)

// CallEvidence is what one partner call sent, got back and caused at the
// backend. It never holds key material: a credential is named by subject,
// serial and fingerprint.
type CallEvidence struct {
	Method               string              `json:"method"`
	URL                  string              `json:"url"`
	Credential           string              `json:"credential"`
	CertificatesSent     int                 `json:"certificates_sent"`
	CertificateRequested bool                `json:"certificate_requested"`
	ExtraHeaders         map[string]string   `json:"extra_headers,omitempty"`
	TLSAlert             string              `json:"tls_alert,omitempty"`
	Status               int                 `json:"status,omitempty"`
	BodyExcerpt          string              `json:"body_excerpt,omitempty"`
	DurationMS           float64             `json:"duration_ms"`
	BackendSaw           []map[string]string `json:"backend_saw"`
	BackendChecked       bool                `json:"backend_checked"`
}

func evidence(r *harness.Result, sent http.Header) CallEvidence {
	e := CallEvidence{
		Method:               r.Method,
		URL:                  r.URL,
		Credential:           r.Credential,
		CertificatesSent:     r.CertificatesSent,
		CertificateRequested: r.CertificateRequested,
		TLSAlert:             r.TLSAlert,
		Status:               r.Status,
		BodyExcerpt:          r.Excerpt(300),
		DurationMS:           float64(r.Duration.Microseconds()) / 1000,
	}
	if len(sent) > 0 {
		e.ExtraHeaders = map[string]string{}
		for k := range sent {
			e.ExtraHeaders[k] = sent.Get(k)
		}
	}
	return e
}

func backendView(seen []productapi.Echo) []map[string]string {
	out := make([]map[string]string, 0, len(seen))
	for _, s := range seen {
		m := map[string]string{}
		for k, v := range s.Headers {
			m[k] = strings.Join(v, ", ")
		}
		out = append(out, m)
	}
	return out
}

// ScenarioResult is one scenario's outcome, for reports.
type ScenarioResult struct {
	Feature string   `json:"feature"`
	URI     string   `json:"uri"`
	Name    string   `json:"name"`
	Tags    []string `json:"tags"`
	Clauses []string `json:"clauses"`
	Modes   []string `json:"modes"`
	Status  Status   `json:"status"`
	Error   string   `json:"error,omitempty"`
	Reason  string   `json:"reason,omitempty"` // deviation or not-applicable reason
	// StaleDeviation marks a failure that only says a profile's known
	// deviation was not observed.
	StaleDeviation bool           `json:"stale_deviation,omitempty"`
	Calls          []CallEvidence `json:"calls"`
	// Checks say what the scenario's checks verified (which product-list
	// check ran, which headers were compared).
	Checks []string `json:"checks,omitempty"`
	// ContactedTarget is false for a scenario that only exercised the
	// harness's own readers (a refused public key, a wrong password): it
	// says nothing about the load balancer.
	ContactedTarget bool `json:"contacted_target"`
	// StartedLoadBalancer is true for the scenario that paid for its
	// configuration's container; the others shared it.
	StartedLoadBalancer bool          `json:"started_load_balancer,omitempty"`
	StartedAt           time.Time     `json:"started_at"`
	Duration            time.Duration `json:"duration_ns"`
}

// SkipMessage says, for a known deviation or a not-applicable scenario,
// why it was neither passed nor failed: the one-line message every report
// format shows, and the detail behind it (what was observed).
func (r ScenarioResult) SkipMessage(profile string) (message, detail string) {
	switch r.Status {
	case KnownDeviation:
		why, observed, _ := strings.Cut(r.Reason, " (observed: ")
		if observed != "" {
			detail = "observed: " + strings.TrimSuffix(observed, ")")
		}
		return fmt.Sprintf("known deviation of %s from %s", profile, why), detail
	case NotApplicable:
		return "not applicable: " + r.Reason, ""
	}
	return "", ""
}

// Recorder collects scenario results; safe for concurrent scenarios.
type Recorder struct {
	mu      sync.Mutex
	results []ScenarioResult
	onDone  func(ScenarioResult)
}

// NewRecorder returns a recorder that calls onDone (if not nil) as each
// scenario ends, for progress output.
func NewRecorder(onDone func(ScenarioResult)) *Recorder { return &Recorder{onDone: onDone} }

func (r *Recorder) add(res ScenarioResult) {
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
	if r.onDone != nil {
		r.onDone(res)
	}
}

// Results returns the results sorted by feature file and scenario name.
func (r *Recorder) Results() []ScenarioResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]ScenarioResult(nil), r.results...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].URI != out[j].URI {
			return out[i].URI < out[j].URI
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Counts tallies results by status.
func Counts(results []ScenarioResult) map[Status]int {
	c := map[Status]int{}
	for _, r := range results {
		c[r.Status]++
	}
	return c
}
