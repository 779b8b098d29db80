package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/onboard"
)

type onboardFixture struct {
	dir        string
	truststore string // existing partners: a CA and a self-signed client
	existing   []byte
}

func newOnboardFixture(t *testing.T) onboardFixture {
	t.Helper()
	dir := t.TempDir()
	root := pkitest.MustRootCA(t, "Existing Root CA")
	inter := pkitest.MustIntermediate(t, root, "Existing Issuing CA")
	self := pkitest.MustSelfSigned(t, "existing-partner")
	// No trailing newline: the output must still be well formed.
	existing := bytes.TrimRight(pki.Bundle(inter.Cert, root.Cert, self.Cert), "\n")
	path := filepath.Join(dir, "current.pem")
	if err := os.WriteFile(path, existing, 0o644); err != nil {
		t.Fatal(err)
	}
	return onboardFixture{dir: dir, truststore: path, existing: existing}
}

func TestOnboardSelfSignedPartner(t *testing.T) {
	harnesstest.RequireDocker(t)
	fx := newOnboardFixture(t)
	partner := pkitest.MustSelfSigned(t, "new-partner")
	files, err := partner.WriteFiles(fx.dir, "new-partner", "pw")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fx.dir, "new.pem")
	reports := filepath.Join(fx.dir, "reports")
	code, stdout, stderr := cli(t, "onboard", "--partner-cert", files.Cert, "--partner-key", files.Key,
		"--truststore", fx.truststore, "--out", out, "--report", reports)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, fx.existing) {
		t.Fatal("the new truststore does not start with the current one byte for byte")
	}
	if want := string(fx.existing) + "\n" + string(partner.CertPEM()); string(got) != want {
		t.Errorf("new truststore = current + %q, want the partner's certificate appended", strings.TrimPrefix(string(got), string(fx.existing)))
	}
	if before, _ := os.ReadFile(fx.truststore); !bytes.Equal(before, fx.existing) {
		t.Error("the input truststore was changed")
	}
	for _, want := range []string{"[ok  ] partner accepted", "HTTP 200", "[ok  ] stranger refused", "[ok  ] existing trust kept",
		"[ok  ] identity forwarded", "scheme dlb: X-SSL-Client-DN, X-SSL-Client-Serial, X-SSL-Client-Verify, X-SSL-Issuer, X-WSO2-CLIENT-CERTIFICATE", "Verdict: ACCEPT"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	var rep onboard.Report
	data, err := os.ReadFile(filepath.Join(reports, "onboard-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil || rep.Verdict != "ACCEPT" {
		t.Errorf("report verdict %q (%v)", rep.Verdict, err)
	}
	noKeyMaterial(t, reports, stdout, stderr)

	// Onboarding the same partner again changes nothing.
	code, stdout, _ = cli(t, "onboard", "--partner-cert", files.Cert, "--truststore", out, "--no-proof", "--report", reports)
	if code != exitOK || !strings.Contains(stdout, "already in the truststore") {
		t.Errorf("second onboarding: exit %d\n%s", code, stdout)
	}
}

func TestOnboardCASignedPartnerWithPKCS12(t *testing.T) {
	harnesstest.RequireDocker(t)
	fx := newOnboardFixture(t)
	root := pkitest.MustRootCA(t, "Partner Root CA")
	inter := pkitest.MustIntermediate(t, root, "Partner Issuing CA")
	leaf := pkitest.MustClient(t, inter, "partner-b")
	// The .p12 carries the intermediate; the root comes as its own file
	// appended to the chain the way partners often send it.
	leaf.Intermediates = append(leaf.Intermediates, root.Cert)
	files, err := leaf.WriteFiles(fx.dir, "partner-b", "pw")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fx.dir, "new.pem")
	t.Setenv("PARTNER_PW", "pw")
	// The API behind the balancer reads Envoy's XFCC.
	code, stdout, stderr := cli(t, "onboard", "--partner-p12", files.P12, "--partner-p12-password-env", "PARTNER_PW",
		"--truststore", fx.truststore, "--out", out, "--report", t.TempDir(), "--scheme", "envoy-xfcc")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	got, _ := os.ReadFile(out)
	if want := string(fx.existing) + "\n" + string(pki.Bundle(inter.Cert, root.Cert)); string(got) != want {
		t.Error("new truststore is not current + intermediate + root")
	}
	if !strings.Contains(stdout, "trusts every client certificate it issues") {
		t.Errorf("no warning that trust is by CA:\n%s", stdout)
	}
	if want := "[ok  ] identity forwarded: the backend saw the partner in scheme envoy-xfcc: X-Forwarded-Client-Cert field Cert, X-Forwarded-Client-Cert field Subject"; !strings.Contains(stdout, want) {
		t.Errorf("output lacks %q:\n%s", want, stdout)
	}
}

func TestOnboardRejects(t *testing.T) {
	fx := newOnboardFixture(t)
	root := pkitest.MustRootCA(t, "Partner Root CA")
	inter := pkitest.MustIntermediate(t, root, "Partner Issuing CA")
	leafOnly := pkitest.MustClient(t, inter, "no-chain")
	expired := pkitest.MustSelfSigned(t, "old", pki.Expired())
	serverOnly := pkitest.MustSelfSigned(t, "server-only", pki.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
	write := func(name string, data []byte) string {
		p := filepath.Join(fx.dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub, err := leafOnly.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	key, err := leafOnly.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	p12, err := leafOnly.PKCS12("right")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"chain missing", []string{"--partner-cert", write("leaf.pem", leafOnly.CertPEM())}, exitFailed, `the certificate of "CN=Partner Issuing CA,O=Test Org"`},
		{"expired", []string{"--partner-cert", write("old.pem", expired.CertPEM())}, exitFailed, "expired on"},
		{"serverAuth only", []string{"--partner-cert", write("srv.pem", serverOnly.CertPEM())}, exitFailed, "not clientAuth"},
		{"public key", []string{"--partner-cert", write("pub.pem", pub)}, exitUsage, "public key (BEGIN PUBLIC KEY)"},
		{"private key as certificate", []string{"--partner-cert", write("key.pem", key)}, exitUsage, "private key never belongs"},
		{"wrong p12 password", []string{"--partner-p12", write("p.p12", p12), "--partner-p12-password", "wrong"}, exitUsage, "wrong password"},
		{"missing file", []string{"--partner-cert", filepath.Join(fx.dir, "nope.pem")}, exitUsage, "no such file"},
		{"output is input", []string{"--partner-cert", write("leaf2.pem", leafOnly.CertPEM()), "--out", fx.truststore}, exitUsage, "must not be the input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"onboard", "--truststore", fx.truststore, "--no-proof", "--report", t.TempDir()}, tt.args...)
			code, stdout, stderr := cli(t, args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, want %d saying %q\nstdout: %s\nstderr: %s", code, tt.code, tt.want, stdout, stderr)
			}
			if before, _ := os.ReadFile(fx.truststore); !bytes.Equal(before, fx.existing) {
				t.Error("the input truststore was changed")
			}
		})
	}
}

// TestOnboardAgainstLiveTarget tries the partner against a live endpoint
// too: trusted there already, and refused by a target that does not trust it.
func TestOnboardAgainstLiveTarget(t *testing.T) {
	harnesstest.RequireDocker(t)
	live, url := startLive(t)
	code, stdout, stderr := cli(t, "onboard", "--partner-cert", live.clientCert, "--partner-key", live.clientKey,
		"--truststore", live.truststore, "--report", t.TempDir(),
		"--target", url, "--server-name", "localhost", "--server-ca", live.serverCA)
	if code != exitOK || !strings.Contains(stdout, "[ok  ] live target") || !strings.Contains(stdout, "already trusted") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	stranger := pkitest.MustSelfSigned(t, "not-deployed-yet")
	files, err := stranger.WriteFiles(t.TempDir(), "s", "")
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = cli(t, "onboard", "--partner-cert", files.Cert, "--partner-key", files.Key,
		"--truststore", live.truststore, "--report", t.TempDir(), "--no-proof",
		"--target", url, "--server-name", "localhost", "--server-ca", live.serverCA)
	if code != exitFailed || !strings.Contains(stdout, "is the new truststore deployed there?") {
		t.Errorf("partner not yet trusted by the live target: exit %d\n%s", code, stdout)
	}
}
