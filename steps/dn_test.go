package steps

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
)

func TestNormalDNReadsEveryRendering(t *testing.T) {
	want := "CN=partner-a,OU=Integrations,O=Test Org\\, Inc.,C=DE"
	for _, in := range []string{
		`CN=partner-a,OU=Integrations,O=Test Org\, Inc.,C=DE`, // RFC 2253 (nginx, HAProxy rfc2253)
		`cn=partner-a, ou=Integrations, o=Test Org\, Inc., c=DE`,
		`CN = partner-a, OU = Integrations, O = "Test Org, Inc.", C = DE`, // OpenSSL's spaced form, RFC 1779 quotes
		`/C=DE/O=Test Org, Inc./OU=Integrations/CN=partner-a`,             // OpenSSL's legacy one-line form
		`2.5.4.3=partner-a,2.5.4.11=Integrations,2.5.4.10=Test Org\2C Inc.,2.5.4.6=DE`,
	} {
		if got := normalDN(in); got != want {
			t.Errorf("normalDN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCertDNMatchesWhatBalancersSend(t *testing.T) {
	email := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	name := pkix.Name{
		CommonName: "partner-a", Organization: []string{"Test Org"},
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: email, Value: "ops@example.test"}},
	}
	raw, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	got := certDN(raw)
	// Go renders the e-mail attribute as an OID with hex; OpenSSL-based
	// balancers send emailAddress=...: both must mean the same DN.
	for _, sent := range []string{
		"emailAddress=ops@example.test,CN=partner-a,O=Test Org",
		"/O=Test Org/CN=partner-a/emailAddress=ops@example.test",
	} {
		if n := normalDN(sent); n != got {
			t.Errorf("certificate DN %q and forwarded %q (%q) differ", got, sent, n)
		}
	}
	var c x509.Certificate
	c.RawSubject = raw
	if certDN(c.RawSubject) == "unparseable DN" {
		t.Error("subject did not parse")
	}
	if normalDN("CN=partner-a,O=Other Org") == got {
		t.Error("a different organisation compared equal")
	}
}

// TestHeaderDNHoldsToTheFamily: within RFC 2253 every spelling is the same
// DN; the legacy slash form is the same DN read canonically, but not what
// the contract's headers carry, and says so.
func TestHeaderDNHoldsToTheFamily(t *testing.T) {
	want := normalDN("CN=partner-a,O=Test Org")
	if got := headerDN("cn=partner-a, o=Test Org"); got != want {
		t.Errorf("an RFC 2253 spelling: %q, want %q", got, want)
	}
	legacy := "/O=Test Org/CN=partner-a"
	if normalDN(legacy) != want {
		t.Fatalf("the legacy form does not read as the same DN: %q", normalDN(legacy))
	}
	if got := headerDN(legacy); got == want || !strings.Contains(got, "legacy slash form") || !strings.Contains(got, legacy) {
		t.Errorf("the legacy form passed, or the message does not name it: %q", got)
	}
}
