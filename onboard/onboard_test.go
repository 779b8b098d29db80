package onboard

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/output"
	"mtlsconform/runner"
)

// current is a truststore of an existing partner, without a trailing
// newline: the combined truststore must still be well formed.
func current(t *testing.T) []byte {
	t.Helper()
	return bytes.TrimRight(pki.Bundle(pkitest.MustSelfSigned(t, "existing-partner").Cert), "\n")
}

func TestVerdict(t *testing.T) {
	ok, failed := ProofLine{OK: true, Check: "a"}, ProofLine{OK: false, Check: "b"}
	tests := []struct {
		name   string
		lintOK bool
		proof  []ProofLine
		want   Verdict
	}{
		{"lint clean, nothing proved", true, nil, Accept},
		{"lint clean, every proof held", true, []ProofLine{ok, ok}, Accept},
		{"lint refused", false, []ProofLine{ok}, Reject},
		{"one proof failed", true, []ProofLine{ok, failed}, Reject},
	}
	for _, tt := range tests {
		if got := verdict(tt.lintOK, tt.proof); got != tt.want {
			t.Errorf("%s: verdict = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestRunCombinesTheTruststore(t *testing.T) {
	existing := current(t)
	partner := pkitest.MustSelfSigned(t, "new-partner")
	out := filepath.Join(t.TempDir(), "new.pem")
	rep, err := Run(context.Background(), Input{
		Chain: []*x509.Certificate{partner.Cert}, TruststorePath: "current.pem", Truststore: existing, Out: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(existing)+"\n"+string(partner.CertPEM()), string(got)); diff != "" {
		t.Errorf("combined truststore: the current one byte for byte, then the partner (-want +got):\n%s", diff)
	}
	want := &Report{
		Partner: partner.Cert.Subject.String(), Verdict: Accept, Findings: rep.Findings,
		Added: []string{partner.Cert.Subject.String()}, Truststore: "current.pem", Output: out,
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}

	// The partner is now in the combined truststore: nothing to add.
	again, err := Run(context.Background(), Input{Chain: []*x509.Certificate{partner.Cert}, TruststorePath: out, Truststore: got})
	if err != nil {
		t.Fatal(err)
	}
	if again.Verdict != Accept || len(again.Added) != 0 || again.Output != "" {
		t.Errorf("second onboarding: verdict %s, added %v, output %q; want ACCEPT, nothing added or written", again.Verdict, again.Added, again.Output)
	}
}

func TestRunRejectsWithoutWriting(t *testing.T) {
	expired := pkitest.MustSelfSigned(t, "old", pki.Expired())
	out := filepath.Join(t.TempDir(), "new.pem")
	rep, err := Run(context.Background(), Input{
		Chain: []*x509.Certificate{expired.Cert}, TruststorePath: "current.pem", Truststore: current(t), Out: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != Reject || rep.Output != "" {
		t.Errorf("verdict %s, output %q; want REJECT and nothing written", rep.Verdict, rep.Output)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused partner's truststore was written: %v", err)
	}
}

// TestRunRefusesKeyInOut: the combined truststore is the current one byte
// for byte, so key material in it (here a PEM header naming a key, which
// still parses as a certificate) must stop the write, not be copied on.
func TestRunRefusesKeyInOut(t *testing.T) {
	existing := pem.EncodeToMemory(&pem.Block{
		Type:    "CERTIFICATE",
		Headers: map[string]string{"Comment": "the PRIVATE " + "KEY is in vault"}, // spelled in parts: no committed file looks like a key
		Bytes:   pkitest.MustSelfSigned(t, "existing-partner").Cert.Raw,
	})
	partner := pkitest.MustSelfSigned(t, "new-partner")
	out := filepath.Join(t.TempDir(), "new.pem")
	_, err := Run(context.Background(), Input{
		Chain: []*x509.Certificate{partner.Cert}, TruststorePath: "current.pem", Truststore: existing, Out: out,
	})
	var km *output.KeyMaterialError
	if !errors.As(err, &km) || !strings.Contains(err.Error(), "combined truststore") {
		t.Fatalf("Run = %v, want a refusal to write the combined truststore", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the truststore was written despite the refusal: %v", err)
	}
}

func TestRunLiveNeedsThePartnersKey(t *testing.T) {
	partner := pkitest.MustSelfSigned(t, "new-partner")
	rep, err := Run(context.Background(), Input{
		Chain: []*x509.Certificate{partner.Cert}, TruststorePath: "current.pem", Truststore: current(t),
		Live: &runner.LiveOptions{URL: "https://lb.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []ProofLine{{OK: false, Check: "live target", Detail: "needs the partner's key (--partner-key or --partner-p12) to call https://lb.example.com as the partner"}}
	if diff := cmp.Diff(want, rep.Proof); diff != "" {
		t.Errorf("proof (-want +got):\n%s", diff)
	}
	if rep.Verdict != Reject {
		t.Errorf("verdict %s, want REJECT: the live target was not checked", rep.Verdict)
	}
}

func sampleReport() *Report {
	return &Report{
		Partner: "CN=new-partner", Verdict: Reject,
		Findings:   []pki.Finding{{Severity: pki.SevWarning, Code: "by-ca", Message: "trusts every client certificate it issues"}},
		Added:      []string{"CN=Issuing CA", "CN=Root CA"},
		Truststore: "current.pem", Output: "new.pem",
		Proof: []ProofLine{
			{OK: true, Check: "existing trust kept", Detail: "all 2 kept"},
			{OK: false, Check: "partner accepted", Detail: "got HTTP 400"},
		},
	}
}

func TestReportText(t *testing.T) {
	var b strings.Builder
	sampleReport().Text(&b)
	want := `Partner: CN=new-partner
  WARNING trusts every client certificate it issues
Truststore gains: CN=Issuing CA; CN=Root CA
Wrote new.pem (the current truststore current.pem unchanged, then the additions)
  [ok  ] existing trust kept: all 2 kept
  [FAIL] partner accepted: got HTTP 400
Verdict: REJECT
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
}

// unordered compares lists of names whatever their order (map keys).
func unordered() cmp.Option { return cmpopts.SortSlices(func(a, b string) bool { return a < b }) }

func TestReportFiles(t *testing.T) {
	rep := sampleReport()
	files, err := rep.Files()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"onboard-report.json", "onboard-report.md"}, slices.Collect(maps.Keys(files)), unordered()); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	var fields map[string]any
	if err := json.Unmarshal(files["onboard-report.json"], &fields); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"added", "findings", "output", "partner", "proof", "truststore", "verdict"}, slices.Collect(maps.Keys(fields)), unordered()); diff != "" {
		t.Errorf("JSON fields (-want +got):\n%s", diff)
	}
	var back Report
	if err := json.Unmarshal(files["onboard-report.json"], &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep, &back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	if md := string(files["onboard-report.md"]); !strings.HasPrefix(md, "## Onboarding: CN=new-partner\n\n**Verdict: REJECT**\n\n") || !strings.HasSuffix(md, "Verdict: REJECT\n") {
		t.Errorf("Markdown does not lead with the verdict and carry the text:\n%s", md)
	}
}
