package steps

import (
	"net/http"
	"sort"
	"strings"
	"sync"

	"mtlsconform/contract"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/partner"
)

func evidence(r *partner.Result, sent http.Header) contract.CallEvidence {
	e := contract.CallEvidence{
		Method:               r.Method,
		URL:                  r.URL,
		Credential:           r.Credential,
		CertificatesSent:     r.CertificatesSent,
		CertificateRequested: r.CertificateRequested,
		TLSAlert:             r.TLSAlert,
		Status:               r.Status,
		BodyExcerpt:          r.Excerpt(300),
		DurationMS:           float64(r.Duration.Microseconds()) / 1000,
		TLSVersion:           r.TLSVersion,
		Protocol:             r.Protocol,
		SNI:                  r.SNI,
		Host:                 r.Host,
	}
	if len(sent) > 0 {
		e.ExtraHeaders = map[string]string{}
		for k, vs := range sent {
			// Names as the caller spelled them; a name sent twice shows both values.
			e.ExtraHeaders[k] = strings.Join(vs, ", ")
		}
	}
	return e
}

// backendRaw is the header lines of each request the backend received,
// names as spelled on the wire.
func backendRaw(seen []productapi.Echo) [][]string {
	var out [][]string
	for _, s := range seen {
		if len(s.RawHeaders) == 0 {
			continue
		}
		lines := make([]string, 0, len(s.RawHeaders))
		for _, h := range s.RawHeaders {
			lines = append(lines, h.Name+": "+h.Value)
		}
		out = append(out, lines)
	}
	return out
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

// Recorder collects scenario results; safe for concurrent scenarios.
type Recorder struct {
	mu      sync.Mutex
	results []contract.ScenarioResult
	onDone  func(contract.ScenarioResult)
}

// NewRecorder returns a recorder that calls onDone (if not nil) as each
// scenario ends, for progress output.
func NewRecorder(onDone func(contract.ScenarioResult)) *Recorder { return &Recorder{onDone: onDone} }

func (r *Recorder) add(res contract.ScenarioResult) {
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
	if r.onDone != nil {
		r.onDone(res)
	}
}

// Results returns the results sorted by feature file and scenario name.
func (r *Recorder) Results() []contract.ScenarioResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]contract.ScenarioResult(nil), r.results...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].URI != out[j].URI {
			return out[i].URI < out[j].URI
		}
		return out[i].Name < out[j].Name
	})
	return out
}
