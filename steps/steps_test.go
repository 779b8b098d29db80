package steps

import (
	"encoding/base64"
	"mtlsconform/fixtures/pki/pkitest"
	"net/url"
	"strings"
	"testing"
)

func TestCertificateTokenReadsEveryEncoding(t *testing.T) {
	id := pkitest.MustSelfSigned(t, "enc")
	want := "certificate sha256:" + id.Fingerprint()
	pemText := string(id.CertPEM())
	for name, v := range map[string]string{
		"URL-encoded PEM (nginx)":  url.QueryEscape(pemText),
		"path-escaped PEM":         url.PathEscape(pemText),
		"raw PEM":                  pemText,
		"base64 DER (Envoy-style)": base64.StdEncoding.EncodeToString(id.DER()),
	} {
		if got := certificateToken(v); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if got := certificateToken("not a certificate"); !strings.HasPrefix(got, "unparseable certificate") {
		t.Errorf("garbage: %s", got)
	}
}

func TestNormalSerial(t *testing.T) {
	for in, want := range map[string]string{"0a:1b:FF": "A1BFF", "00AB": "AB", "ab": "AB", "0": "0"} {
		if got := normalSerial(in); got != want {
			t.Errorf("normalSerial(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCatalogueNamesMeanOneCertificate(t *testing.T) {
	c := NewCatalogue()
	if _, err := c.CA("Root", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CA("Issuing", "Root"); err != nil {
		t.Fatal(err)
	}
	a, err := c.Client("a", ClientSpec{Issuer: "Issuing"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Client("a", ClientSpec{Issuer: "Issuing"})
	if err != nil || again != a {
		t.Errorf("same definition twice gave another certificate (%v)", err)
	}
	if _, err := c.Client("a", ClientSpec{Issuer: "Issuing", Variant: "expired"}); err == nil {
		t.Error("a name was redefined with another variant")
	}
	if _, err := c.CA("Issuing", ""); err == nil {
		t.Error("a CA was redefined under another parent")
	}
	if _, err := c.Client("b", ClientSpec{Issuer: "Nowhere"}); err == nil || !strings.Contains(err.Error(), "not defined") {
		t.Errorf("unknown issuer: %v", err)
	}
	r1, _ := c.Client("r", ClientSpec{Issuer: "Issuing", Variant: "revoked"})
	crl, err := c.CRL("Issuing")
	if err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(r1.Cert.SerialNumber) != 0 {
		t.Error("CRL does not list the revoked certificate")
	}
	if again, _ := c.CRL("Issuing"); again != crl {
		t.Error("CRL regenerated though nothing new was revoked: the load balancer could not be shared")
	}
}
