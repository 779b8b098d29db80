package onboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"mtlsconform/fixtures/pki"
)

// Verdict is the answer of onboarding.
type Verdict string

const (
	// Accept: the partner's certificate will be accepted with the
	// combined truststore and nobody trusted before is broken.
	Accept Verdict = "ACCEPT"
	// Reject: the lint or a proof failed; the report says which.
	Reject Verdict = "REJECT"
)

// Report is the verdict with its grounds, printed and written as JSON and
// Markdown.
type Report struct {
	Partner    string        `json:"partner"`
	Verdict    Verdict       `json:"verdict"`
	Findings   []pki.Finding `json:"findings"`
	Added      []string      `json:"added"`
	Truststore string        `json:"truststore"`
	Output     string        `json:"output,omitempty"`
	Proof      []ProofLine   `json:"proof"`
}

// ProofLine is one check made with the combined truststore.
type ProofLine struct {
	OK     bool   `json:"ok"`
	Check  string `json:"check"`
	Detail string `json:"detail"`
}

func (r *Report) prove(ok bool, check, format string, args ...any) {
	r.Proof = append(r.Proof, ProofLine{OK: ok, Check: check, Detail: fmt.Sprintf(format, args...)})
}

// Text writes the report as the command prints it: findings, what the
// truststore gains, each proof and the verdict.
func (r *Report) Text(w io.Writer) {
	fmt.Fprintf(w, "Partner: %s\n", r.Partner)
	for _, f := range r.Findings {
		fmt.Fprintf(w, "  %-7s %s\n", strings.ToUpper(string(f.Severity)), f.Message)
	}
	if len(r.Added) > 0 {
		fmt.Fprintf(w, "Truststore gains: %s\n", strings.Join(r.Added, "; "))
	}
	if r.Output != "" {
		fmt.Fprintf(w, "Wrote %s (the current truststore %s unchanged, then the additions)\n", r.Output, r.Truststore)
	}
	for _, p := range r.Proof {
		mark := "ok  "
		if !p.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", mark, p.Check, p.Detail)
	}
	fmt.Fprintf(w, "Verdict: %s\n", r.Verdict)
}

// Files returns the report files by name, onboard-report.json and
// onboard-report.md, for output.WriteFiles.
func (r *Report) Files() (map[string][]byte, error) {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the onboarding report: %w", err)
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "## Onboarding: %s\n\n**Verdict: %s**\n\n", r.Partner, r.Verdict)
	r.Text(&md)
	return map[string][]byte{"onboard-report.json": js, "onboard-report.md": md.Bytes()}, nil
}
