package contract

import (
	"fmt"
	"strings"
	"time"
)

// Status is a scenario's verdict.
type Status string

const (
	Passed         Status = "passed"
	Failed         Status = "failed"
	KnownDeviation Status = "known deviation"
	NotApplicable  Status = "not applicable"
	// NotSupported: the implementation cannot be configured as the
	// scenario describes at all (no CRL option, no verify depth).
	NotSupported Status = "not supported"
)

// Statuses are every verdict, in the order reports list them.
var Statuses = []Status{Passed, Failed, KnownDeviation, NotApplicable, NotSupported}

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
	TLSVersion           string              `json:"tls_version,omitempty"`
	Protocol             string              `json:"protocol,omitempty"`
	SNI                  string              `json:"sni,omitempty"`
	Host                 string              `json:"host,omitempty"`
	TLSAlert             string              `json:"tls_alert,omitempty"`
	Status               int                 `json:"status,omitempty"`
	BodyExcerpt          string              `json:"body_excerpt,omitempty"`
	DurationMS           float64             `json:"duration_ms"`
	BackendSaw           []map[string]string `json:"backend_saw"`
	// BackendRaw is, per request the backend received, its header lines
	// with the names spelled as they arrived ("X_ssl_client_dn: …"),
	// where the backend could keep them.
	BackendRaw     [][]string `json:"backend_raw,omitempty"`
	BackendChecked bool       `json:"backend_checked"`
}

// ScenarioResult is one scenario's outcome, for reports.
type ScenarioResult struct {
	Feature string   `json:"feature"`
	URI     string   `json:"uri"`
	Name    string   `json:"name"`
	Tags    []string `json:"tags"`
	Clauses []string `json:"clauses"`
	Modes   []Mode   `json:"modes"`
	Status  Status   `json:"status"`
	Error   string   `json:"error,omitempty"`
	Reason  string   `json:"reason,omitempty"` // deviation or not-applicable reason
	// Unmet names the capability a not-applicable scenario needed and the
	// target lacked (backend-view, new-leaves, reconfigures), when known.
	Unmet string `json:"unmet,omitempty"`
	// StaleDeviation marks a failure that only says a profile's known
	// deviation was not observed.
	StaleDeviation bool `json:"stale_deviation,omitempty"`
	// Violation marks a failure in which a check of the contract failed,
	// as opposed to one where the harness or the environment did (a
	// timeout, a configuration that would not start): only a violation
	// says the target broke a promise.
	Violation bool           `json:"violation,omitempty"`
	Calls     []CallEvidence `json:"calls"`
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
	case NotSupported:
		return "not supported: " + r.Reason, ""
	}
	return "", ""
}

// Counts tallies results by status.
func Counts(results []ScenarioResult) map[Status]int {
	c := map[Status]int{}
	for _, r := range results {
		c[r.Status]++
	}
	return c
}

// CountLine is the one-line tally that ends a run; every report shows it.
func CountLine(results []ScenarioResult) string {
	c := Counts(results)
	line := fmt.Sprintf("%d scenarios: %d passed, %d failed, %d known deviation(s), %d not applicable",
		len(results), c[Passed], c[Failed], c[KnownDeviation], c[NotApplicable])
	if c[NotSupported] > 0 {
		line += fmt.Sprintf(", %d not supported", c[NotSupported])
	}
	return line
}

// Stats say what a run cost.
type Stats struct {
	ContainersStarted int
	// ContainersKept counts the containers an earlier run kept that this
	// one used instead of starting its own (--warm).
	ContainersKept int
	LoadBalancers  int
	// Backend says where the backend behind the balancers ran
	// (BackendHere, BackendContainer); empty for a live target's run.
	Backend string
	// Shared says the run's balancer ran as a process in a container
	// several runs of one process shared (the matrix's), not in one of
	// its own.
	Shared bool
}

// Where a run's backend ran (Stats.Backend).
const (
	BackendHere      = "served by this program"
	BackendContainer = "in a container"
)

// RunResult is what a run produced.
type RunResult struct {
	Results []ScenarioResult
	// GodogStatus is godog's exit status: 0 passed, 1 failed, 2 usage.
	GodogStatus int
	Stats       Stats
	Wall        time.Duration
	Target      string
	// Implementation names the reference implementation the run started
	// ("nginx", "haproxy" …); empty for a live target.
	Implementation string
	Profile        Profile
	// Scheme names the header scheme the run checked; SchemeNote says how
	// it changes what the header clauses verify.
	Scheme, SchemeNote string
	// Modes are the modes the run's verdict speaks for: a live target's
	// mode, or the modes the reference run's scenarios exercised.
	Modes []Mode
}

// SchemaVersion is the version of results.json; it changes when a field
// changes meaning or goes away.
const SchemaVersion = 2

// Document is results.json: the run, its coverage and every scenario.
type Document struct {
	SchemaVersion  int              `json:"schema_version"`
	Target         string           `json:"target"`
	Implementation string           `json:"implementation,omitempty"`
	Profile        string           `json:"profile"`
	Scheme         string           `json:"scheme,omitempty"`
	SchemeNote     string           `json:"scheme_note,omitempty"`
	Deviations     []Deviation      `json:"deviations,omitempty"`
	Modes          []Mode           `json:"modes"`
	Wall           string           `json:"wall"`
	Coverage       Coverage         `json:"coverage"`
	Results        []ScenarioResult `json:"results"`
}

// NewDocument makes the results.json document of a run.
func NewDocument(r RunResult) Document {
	return Document{
		SchemaVersion: SchemaVersion, Target: r.Target, Implementation: r.Implementation,
		Profile: r.Profile.Name, Scheme: r.Scheme, SchemeNote: r.SchemeNote, Deviations: r.Profile.Deviations, Modes: r.Modes,
		Wall: r.Wall.String(), Coverage: ComputeCoverage(r.Results, r.Modes), Results: r.Results,
	}
}
