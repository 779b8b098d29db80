package steps

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/fixtures/productapi"
)

func TestOCSPSayAnswer(t *testing.T) {
	ca := pkitest.MustRootCA(t, "Say CA")
	leaf := pkitest.MustClient(t, ca, "leaf")
	now := time.Now()
	for _, tt := range []struct {
		say        OCSPSay
		status     int
		nextBefore bool // nextUpdate before now
	}{
		{OCSPSay{Behaviour: productapi.OCSPRespond, Status: pki.OCSPGood}, ocsp.Good, false},
		{OCSPSay{Behaviour: productapi.OCSPRespond, Status: pki.OCSPRevoked}, ocsp.Revoked, false},
		{OCSPSay{Behaviour: productapi.OCSPRespond, Status: pki.OCSPUnknown}, ocsp.Unknown, false},
		{OCSPSay{Behaviour: productapi.OCSPRespond, Status: pki.OCSPGood, Stale: true}, ocsp.Good, true},
	} {
		tt.say.CA, tt.say.Cert = ca, leaf.Cert
		a, err := tt.say.Answer(now)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			r, err := ocsp.ParseResponseForCert(a.Responses[h.String()], leaf.Cert, ca.Cert)
			if err != nil {
				t.Fatalf("%s, %v: %v", tt.say, h, err)
			}
			if r.Status != tt.status || r.NextUpdate.Before(now) != tt.nextBefore || r.ThisUpdate.After(now) {
				t.Errorf("%s, %v: status %d, this %v, next %v", tt.say, h, r.Status, r.ThisUpdate, r.NextUpdate)
			}
			if tt.nextBefore && now.Sub(r.NextUpdate) < 5*time.Minute {
				t.Errorf("%s: nextUpdate %v is within the 5 minutes of skew balancers allow", tt.say, r.NextUpdate)
			}
		}
	}
	down, err := OCSPSay{CA: ca, Cert: leaf.Cert, Behaviour: productapi.OCSPDown}.Answer(now)
	if err != nil || down.Responses != nil || down.Serial != leaf.Cert.SerialNumber.Text(16) {
		t.Errorf("down: %+v, %v", down, err)
	}
	keyless := &pki.CA{Identity: pki.Identity{Cert: ca.Cert}}
	if _, err := (OCSPSay{CA: keyless, Cert: leaf.Cert, Behaviour: productapi.OCSPRespond, Status: pki.OCSPGood}).Answer(now); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("a CA without its key signed: %v", err)
	}
}

func TestClaimOCSPOneScenarioPerCertificate(t *testing.T) {
	c := NewCatalogue()
	if err := c.ClaimOCSP("ocsp-a", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := c.ClaimOCSP("ocsp-a", "s1"); err != nil {
		t.Errorf("the same scenario again: %v", err)
	}
	if err := c.ClaimOCSP("ocsp-a", "s2"); err == nil || !strings.Contains(err.Error(), "certificates of its own") {
		t.Errorf("a second scenario: %v", err)
	}
}
