package runner

import (
	"context"
	"errors"
	"mtlsconform/contract"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/lb"
	"mtlsconform/steps"
	"strings"
	"testing"
)

func TestLiveTargetApplicability(t *testing.T) {
	cred := pkitest.MustClient(t, pkitest.MustIntermediate(t, pkitest.MustRootCA(t, "Live Root"), "Live Issuing"), "live")
	live, err := NewLive(LiveOptions{URL: "https://lb.example:443", Mode: contract.Mandatory, Credential: cred, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	cat := steps.NewCatalogue()
	live.seed(cat)
	standard := steps.Setup{Config: lb.Config{Mode: contract.Mandatory}, TrustNames: []string{steps.PartnerRoot, steps.PartnerIssuing}}
	if ep, err := live.Endpoint(context.Background(), standard); err != nil || ep.URL != "https://lb.example:443" {
		t.Errorf("standard setup: %v %v", ep, err)
	}
	for name, s := range map[string]steps.Setup{
		"other mode":       {Config: lb.Config{Mode: contract.Optional}, TrustNames: standard.TrustNames},
		"other truststore": {Config: lb.Config{Mode: contract.Mandatory}, TrustNames: []string{steps.PartnerRoot}},
		"CRL":              {Config: lb.Config{Mode: contract.Mandatory}, TrustNames: standard.TrustNames, CRLNames: []string{steps.PartnerRoot}},
		"verify depth":     {Config: lb.Config{Mode: contract.Mandatory, VerifyDepth: 1}, TrustNames: standard.TrustNames},
	} {
		if _, err := live.Endpoint(context.Background(), s); !errors.Is(err, steps.ErrNotApplicable) {
			t.Errorf("%s: err = %v, want not applicable", name, err)
		}
	}
	if _, err := live.MapPath(productapi.EchoPath); !errors.Is(err, steps.ErrNotApplicable) {
		t.Errorf("echo path without an echo backend: %v", err)
	}
	lacks := live.Capabilities().Lacks
	for _, n := range steps.Needs {
		if lacks[n] == "" {
			t.Errorf("a live target without echo path and CA key claims it can meet %s", n)
		}
	}
	if id, err := cat.Identity(steps.PartnerLeaf); err != nil || id != cred {
		t.Error("the trusted credential does not play partner-a")
	}
	if _, err := cat.Client("someone-else", steps.ClientSpec{Issuer: steps.PartnerIssuing}); !errors.Is(err, steps.ErrNotApplicable) || !strings.Contains(err.Error(), "key") {
		t.Errorf("leaf under a keyless CA: %v", err)
	}
	if _, err := NewLive(LiveOptions{URL: "http://plain", Mode: contract.Mandatory, Credential: cred}); err == nil {
		t.Error("an http:// target was accepted")
	}
	if _, err := NewLive(LiveOptions{URL: "https://x", Mode: contract.Mandatory, Credential: cred}); err == nil || !strings.Contains(err.Error(), "ServerRoots") {
		t.Errorf("no server CA and no insecure flag: %v", err)
	}
}

// TestLiveOCSPResponderUnreachable: a responder that does not answer stops
// the run before any scenario, naming the responder (never its token) and
// what to do.
func TestLiveOCSPResponderUnreachable(t *testing.T) {
	ca := pkitest.MustRootCA(t, "Live OCSP Root")
	cred := pkitest.MustClient(t, ca, "partner")
	live, err := NewLive(LiveOptions{URL: "https://127.0.0.1:1", Mode: contract.Mandatory, Credential: cred, CA: ca,
		InsecureSkipVerify: true, OCSP: "http://mtlsconform:s3cret-token@127.0.0.1:1/ocsp"})
	if err != nil {
		t.Fatal(err)
	}
	err = live.Open(context.Background(), steps.NewCatalogue())
	if err == nil {
		t.Fatal("a responder nobody serves was taken")
	}
	for _, want := range []string{"OCSP responder http://127.0.0.1:1/ocsp (--ocsp)", "mtlsconform ocsp-responder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "s3cret-token") {
		t.Errorf("error shows the responder's token: %v", err)
	}
}
