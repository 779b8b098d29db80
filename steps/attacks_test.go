package steps

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/partner"
)

// cannedTarget answers BackendRequests with what a test says the backend
// saw; the checks under test never call anything else.
type cannedTarget struct {
	Target
	seen []productapi.Echo
}

func (c cannedTarget) BackendRequests(context.Context, string) ([]productapi.Echo, error) {
	return c.seen, nil
}
func (cannedTarget) Describe() string { return "canned" }
func (cannedTarget) Hosts() Hosts     { return Hosts{Protected: "localhost", Public: "public.localhost"} }

func raw(lines ...string) productapi.Echo {
	e := productapi.Echo{Method: "GET", Path: "/echo", Headers: map[string][]string{}}
	for i := 0; i+1 < len(lines); i += 2 {
		e.RawHeaders = append(e.RawHeaders, productapi.RawHeader{Name: lines[i], Value: lines[i+1]})
		k := http.CanonicalHeaderKey(lines[i])
		e.Headers[k] = append(e.Headers[k], lines[i+1])
	}
	return e
}

// checkOn runs one Then step on a scenario whose last call came back as
// res and whose backend saw seen; it says whether the step failed on a
// promise of the contract.
func checkOn(t *testing.T, mode contract.Mode, res *partner.Result, cred *pki.Identity, seen []productapi.Echo, check func(*scenario) error) (failed bool) {
	t.Helper()
	cat := NewCatalogue()
	st := &scenario{suite: &Suite{Target: cannedTarget{seen: seen}, Profile: contract.GenericHTTP400, Catalogue: cat}}
	st.cfg.Mode = mode
	st.calls = []*call{{res: res, cred: cred}}
	err := check(st)
	var ce *contractError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ce):
		return true
	}
	t.Fatalf("not a contract error: %v", err)
	return false
}

func TestNoOtherSpelling(t *testing.T) {
	ok := &partner.Result{Status: 200}
	cases := []struct {
		name string
		seen productapi.Echo
		fail bool
	}{
		{"the balancer's own headers", raw("X-SSL-Client-Verify", "SUCCESS", "x-ssl-client-dn", "CN=a"), false},
		{"an underscore spelling beside them", raw("X-SSL-Client-Verify", "SUCCESS", "X_SSL_Client_DN", "CN=admin"), true},
		{"a dash and an underscore mixed", raw("X-SSL_Issuer", "CN=x"), true},
		{"the same header twice in two cases", raw("X-SSL-Client-Verify", "SUCCESS", "x-ssl-client-verify", "SUCCESS"), true},
		{"the certificate header with underscores", raw("X_WSO2_CLIENT_CERTIFICATE", "x"), true},
		{"other headers with underscores are not the contract's", raw("X_Trace_Id", "1", "X-SSL-Client-Verify", "NONE"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkOn(t, contract.Mandatory, ok, nil, []productapi.Echo{tc.seen}, func(st *scenario) error {
				_, err := st.noOtherSpelling(context.Background())
				return err
			}); got != tc.fail {
				t.Errorf("failed %v, want %v", got, tc.fail)
			}
		})
	}
	t.Run("without raw lines, Go's names still show an underscore", func(t *testing.T) {
		e := raw("X_SSL_Client_DN", "CN=admin")
		e.RawHeaders = nil
		if !checkOn(t, contract.Mandatory, ok, nil, []productapi.Echo{e}, func(st *scenario) error {
			_, err := st.noOtherSpelling(context.Background())
			return err
		}) {
			t.Error("passed")
		}
	})
}

func TestPlainDoorClosed(t *testing.T) {
	redirect := &partner.Result{Status: 301, Header: http.Header{"Location": {"https://localhost:8443/echo"}}}
	cases := []struct {
		name string
		res  *partner.Result
		seen []productapi.Echo
		fail bool
	}{
		{"redirected to https, nothing at the backend", redirect, nil, false},
		{"redirected, yet the backend got it", redirect, []productapi.Echo{raw("X-SSL-Client-Verify", "SUCCESS")}, true},
		{"redirected to plain http", &partner.Result{Status: 302, Header: http.Header{"Location": {"http://localhost/echo"}}}, nil, true},
		{"refused", &partner.Result{Status: 403}, nil, false},
		{"passed on with the balancer's NONE", &partner.Result{Status: 200}, []productapi.Echo{raw("X-SSL-Client-Verify", "NONE")}, false},
		{"passed on with nothing of the contract", &partner.Result{Status: 200}, []productapi.Echo{raw("Accept", "*/*")}, false},
		{"passed on with the forged SUCCESS", &partner.Result{Status: 200}, []productapi.Echo{raw("X-SSL-Client-Verify", "SUCCESS")}, true},
		{"passed on with a forged DN beside NONE", &partner.Result{Status: 200}, []productapi.Echo{raw("X-SSL-Client-Verify", "NONE", "X-SSL-Client-DN", "CN=admin")}, true},
		{"passed on with NONE spelled with underscores", &partner.Result{Status: 200}, []productapi.Echo{raw("X_SSL_Client_Verify", "NONE")}, true},
		{"a server error", &partner.Result{Status: 502}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkOn(t, contract.Optional, tc.res, nil, tc.seen, func(st *scenario) error {
				_, err := st.plainDoorClosed(context.Background())
				return err
			}); got != tc.fail {
				t.Errorf("failed %v, want %v", got, tc.fail)
			}
		})
	}
}

func TestProtectedRefusedOrVerified(t *testing.T) {
	caller := pkitest.MustSelfSigned(t, "partner")
	asked := &partner.Result{Status: 200, CertificateRequested: true, CertificatesSent: 1}
	notAsked := &partner.Result{Status: 200}
	success := raw("X-SSL-Client-Verify", "SUCCESS", "X-SSL-Client-DN", certDN(caller.Cert.RawSubject))
	cases := []struct {
		name string
		mode contract.Mode
		res  *partner.Result
		seen []productapi.Echo
		fail bool
	}{
		{"421, nothing at the backend", contract.Mandatory, &partner.Result{Status: 421}, nil, false},
		{"421, yet the backend got it", contract.Mandatory, &partner.Result{Status: 421}, []productapi.Echo{raw("X-SSL-Client-Verify", "NONE")}, true},
		{"refused by alert", contract.Mandatory, &partner.Result{TLSAlert: "tls: certificate required"}, nil, false},
		{"verified: asked, presented, SUCCESS with its subject", contract.Mandatory, asked, []productapi.Echo{success}, false},
		{"SUCCESS for a caller never asked", contract.Mandatory, notAsked, []productapi.Echo{success}, true},
		{"SUCCESS with another subject", contract.Mandatory, asked, []productapi.Echo{raw("X-SSL-Client-Verify", "SUCCESS", "X-SSL-Client-DN", "CN=admin")}, true},
		{"served by the public host, no verification at all", contract.Mandatory, notAsked, []productapi.Echo{raw("Accept", "*/*")}, true},
		{"Mandatory served as NONE", contract.Mandatory, notAsked, []productapi.Echo{raw("X-SSL-Client-Verify", "NONE")}, true},
		{"Optional passed on as NONE", contract.Optional, notAsked, []productapi.Echo{raw("X-SSL-Client-Verify", "NONE")}, false},
		{"Optional NONE with a forged DN", contract.Optional, notAsked, []productapi.Echo{raw("X-SSL-Client-Verify", "NONE", "X-SSL-Client-DN", "CN=admin")}, true},
		{"a redirect", contract.Mandatory, &partner.Result{Status: 302}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkOn(t, tc.mode, tc.res, caller, tc.seen, func(st *scenario) error {
				_, err := st.protectedRefusedOrVerified(context.Background())
				return err
			}); got != tc.fail {
				t.Errorf("failed %v, want %v", got, tc.fail)
			}
		})
	}
}

func TestBigCertWholeOrRefused(t *testing.T) {
	ca := pkitest.MustRootCA(t, "big CA")
	cat := NewCatalogue()
	cat.SeedCA("big CA", ca)
	big, err := cat.Client("big", ClientSpec{Issuer: "big CA", DNSNames: 400})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(encodeCert(contract.URLPEM, big)); n <= 16<<10 {
		t.Fatalf("400 names make a header of %d bytes only", n)
	}
	// nginx's $ssl_client_escaped_cert: everything outside the unreserved
	// set percent-encoded, spaces as %20.
	whole := strings.ReplaceAll(url.QueryEscape(string(big.CertPEM())), "+", "%20")
	cases := []struct {
		name string
		res  *partner.Result
		seen []productapi.Echo
		fail bool
	}{
		{"forwarded whole", &partner.Result{Status: 200}, []productapi.Echo{raw(contract.DefaultCertHeader, whole)}, false},
		{"cut at 8 KiB", &partner.Result{Status: 200}, []productapi.Echo{raw(contract.DefaultCertHeader, whole[:8192])}, true},
		{"dropped", &partner.Result{Status: 200}, []productapi.Echo{raw("X-SSL-Client-Verify", "SUCCESS")}, true},
		{"empty armour", &partner.Result{Status: 200}, []productapi.Echo{raw(contract.DefaultCertHeader, "-----BEGIN%20CERTIFICATE-----%0A-----END%20CERTIFICATE-----%0A")}, true},
		{"refused with 431", &partner.Result{Status: 431}, nil, false},
		{"refused, yet the backend got it", &partner.Result{Status: 400}, []productapi.Echo{raw("X-SSL-Client-Verify", "SUCCESS")}, true},
		{"a 502", &partner.Result{Status: 502}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &scenario{suite: &Suite{Target: cannedTarget{seen: tc.seen}, Profile: contract.GenericHTTP400, Catalogue: cat}}
			st.calls = []*call{{res: tc.res, cred: big}}
			_, err := st.bigCertWholeOrRefused(context.Background(), "big", contract.DefaultCertHeader)
			var ce *contractError
			if err != nil && !errors.As(err, &ce) {
				t.Fatalf("not a contract error: %v", err)
			}
			if got := err != nil; got != tc.fail {
				t.Errorf("failed %v (%v), want %v", got, err, tc.fail)
			}
		})
	}
}
