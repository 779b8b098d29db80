package steps

import (
	"crypto/x509"
	"strings"
	"testing"

	"mtlsconform/fixtures/pki"
)

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

// Runs of one process share an RSA key per certificate name (one takes
// tens of milliseconds to make); within a run, two names never share one.
func TestRSAKeysSharedAcrossRunsNotWithinOne(t *testing.T) {
	pub := func(c *Catalogue, name string) string {
		t.Helper()
		if _, err := c.CA("Partner Root CA", ""); err != nil {
			t.Fatal(err)
		}
		id, err := c.Client(name, ClientSpec{Issuer: "Partner Root CA", KeyType: pki.RSA2048})
		if err != nil {
			t.Fatal(err)
		}
		if id.Cert.PublicKeyAlgorithm != x509.RSA {
			t.Fatalf("%s: a %v key, want RSA", name, id.Cert.PublicKeyAlgorithm)
		}
		return string(id.Cert.RawSubjectPublicKeyInfo)
	}
	one, two := NewCatalogue(), NewCatalogue()
	if pub(one, "partner-rsa") != pub(two, "partner-rsa") {
		t.Error("two runs made two RSA keys for one certificate name")
	}
	if pub(one, "partner-rsa") == pub(one, "other-rsa") {
		t.Error("two certificates of one run share a key")
	}
}
