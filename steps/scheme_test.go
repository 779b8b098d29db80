package steps

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/partner"
)

func TestCertTokenHoldsToTheEncoding(t *testing.T) {
	// A raw "+" can only show in a certificate whose base64 has one: most
	// have several, a rare one none.
	id := pkitest.MustSelfSigned(t, "enc")
	for i := 0; !strings.Contains(base64.StdEncoding.EncodeToString(id.DER()), "+"); i++ {
		if i == 50 {
			t.Fatal("50 certificates without a + in their base64")
		}
		id = pkitest.MustSelfSigned(t, "enc")
	}
	other := pkitest.MustSelfSigned(t, "other")
	want := "certificate sha256:" + id.Fingerprint()
	pemText := string(id.CertPEM())
	nginx := strings.ReplaceAll(url.QueryEscape(pemText), "+", "%20")
	b64 := base64.StdEncoding.EncodeToString(id.DER())
	alb := strings.NewReplacer("%2B", "+", "%3D", "=", "%2F", "/").Replace(nginx)
	for _, tc := range []struct {
		name  string
		enc   contract.CertEncoding
		value string
		ok    bool
		says  string
	}{
		{"nginx's escaped PEM", contract.URLPEM, nginx, true, ""},
		{"raw + where URL-encoding is wanted", contract.URLPEM, alb, false, `raw "+"`},
		{"raw PEM where URL-encoding is wanted", contract.URLPEM, pemText, false, "line breaks"},
		{"a chain where the leaf is wanted", contract.URLPEM, nginx + strings.ReplaceAll(url.QueryEscape(string(other.CertPEM())), "+", "%20"), false, "2 certificates"},
		{"ALB's leaf", contract.URLPEMRawPlus, alb, true, ""},
		{"fully escaped PEM is fine for ALB's decoder", contract.URLPEMRawPlus, nginx, true, ""},
		{"RFC 9440", contract.RFC9440, ":" + b64 + ":", true, ""},
		{"RFC 9440 without colons", contract.RFC9440, b64, false, "not an RFC 9440 byte sequence"},
		{"PEM where RFC 9440 is wanted", contract.RFC9440, nginx, false, "PEM, where the scheme wants an RFC 9440"},
		{"RFC 9440 list where the leaf is wanted", contract.RFC9440, ":" + b64 + ":, :" + base64.StdEncoding.EncodeToString(other.DER()) + ":", false, "2 certificates"},
		{"Traefik's base64 DER", contract.Base64DERCert, b64, true, ""},
		{"Traefik's comma-joined chain", contract.Base64DERCert, b64 + "," + base64.StdEncoding.EncodeToString(other.DER()), false, "2 certificates"},
		{"PEM where base64 DER is wanted", contract.Base64DERCert, pemText, false, "without armour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := certToken(tc.enc, tc.value)
			if (got == want) != tc.ok || (!tc.ok && !strings.Contains(got, tc.says)) {
				t.Errorf("certToken(%s) = %s; want ok=%v saying %q", tc.enc, got, tc.ok, tc.says)
			}
		})
	}
	for _, enc := range []contract.CertEncoding{contract.URLPEM, contract.URLPEMRawPlus, contract.RFC9440, contract.Base64DERCert} {
		if got := certToken(enc, encodeCert(enc, id)); got != want {
			t.Errorf("%s does not read back what encodeCert writes: %s", enc, got)
		}
	}
}

func TestSchemeFactsReadXFCC(t *testing.T) {
	id := pkitest.MustSelfSigned(t, "xfcc")
	s, _ := contract.LookupScheme("envoy-xfcc")
	cert := encodeCert(contract.URLPEM, id)
	subject := certDN(id.Cert.RawSubject)
	const hdr = "X-Forwarded-Client-Cert"
	key := s.Cert.Place.String()
	for _, tc := range []struct {
		name, value, want string
	}{
		{"Envoy's element", `By=spiffe://mesh/lb;Hash=ab12;Cert="` + cert + `";Subject="` + subject + `";URI=;DNS=a.example`, "certificate sha256:" + id.Fingerprint()},
		{"Cert unquoted", `Hash=ab12;Cert=` + cert + `;Subject="` + subject + `"`, "field Cert unquoted"},
		{"a caller's element kept", `Cert="` + cert + `",Cert="` + cert + `"`, "2 elements"},
		{"an unterminated quote", `Cert="` + cert, "unterminated quote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := schemeFacts(s, http.Header{hdr: {tc.value}})[key]
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// A subject with a comma, a semicolon and an escaped quote survives
	// the quoting as the RFC 2253 text it is.
	elems, err := parseXFCC(`Subject="CN=a\"b,O=Acme\, Inc; Ltd";Cert="x"`)
	if err != nil || elems[0]["subject"].value != `CN=a\"b,O=Acme\, Inc; Ltd` {
		t.Errorf("parseXFCC: %v %+v", err, elems)
	}
}

func TestVerifyAndSerialTokens(t *testing.T) {
	in, _ := contract.LookupScheme("ingress-nginx")
	for v, want := range map[string]string{"SUCCESS": "SUCCESS", "NONE": "NONE", "FAILED:unable to get local issuer certificate": "FAILED"} {
		if got := verifyToken(in.Verify, v); got != want {
			t.Errorf("ingress-nginx %q → %q, want %q", v, got, want)
		}
	}
	dlb, _ := contract.LookupScheme("dlb")
	if got := verifyToken(dlb.Verify, "FAILED:unable to get local issuer certificate"); got == "FAILED" {
		t.Error("dlb wants exactly FAILED (C10), a reason appended passed")
	}
	for _, tc := range []struct {
		form      contract.SerialForm
		in, token string
	}{
		{contract.SerialHex, "0A1B", "A1B"}, {contract.SerialHex, "0a:1b", `"0a:1b", where`},
		{contract.SerialHexColons, "0A:1B", "A1B"}, {contract.SerialHexColons, "0A1B", "hex pairs"},
		{contract.SerialDecimal, "2587", "A1B"}, {contract.SerialDecimal, "0A1B", "decimal"},
	} {
		if got := serialToken(tc.form, tc.in); !strings.HasPrefix(got, tc.token) && !strings.Contains(got, tc.token) {
			t.Errorf("serialToken(%s, %q) = %q, want %q", tc.form, tc.in, got, tc.token)
		}
	}
	if got := dnToken(contract.RFC2253, "/O=Acme/CN=partner"); !strings.Contains(got, "legacy slash form") {
		t.Errorf("legacy DN under rfc2253: %q", got)
	}
	if got := dnToken(contract.LegacySlash, "CN=partner,O=Acme"); !strings.Contains(got, "RFC 2253 form, where the scheme wants") {
		t.Errorf("RFC 2253 DN under legacy: %q", got)
	}
	id := pkitest.MustSelfSigned(t, "dn")
	b64 := base64.StdEncoding.EncodeToString(id.Cert.RawSubject)
	if got := dnToken(contract.RFC2253, b64); !strings.Contains(got, "DN's DER in base64, where the scheme wants RFC 2253") {
		t.Errorf("base64 DN under rfc2253: %q", got)
	}
	if got := dnToken(contract.Base64DER, b64); got != certDN(id.Cert.RawSubject) {
		t.Errorf("base64 DN under base64-der: %q", got)
	}
	if got := dnToken(contract.Base64DER, "CN=dn,O=Test Org"); !strings.Contains(got, "a DN in text") {
		t.Errorf("RFC 2253 under base64-der: %q", got)
	}
	if dnToken(contract.LegacySlash, "/O=Acme/CN=partner") != dnToken(contract.RFC2253, "CN=partner, O=Acme") {
		t.Error("one DN in two families reads as two DNs")
	}
}

func TestRespell(t *testing.T) {
	for spelled, want := range map[string]string{"X_SSL_Client_DN": "ssl_client_subject_dn", "x-ssl-client-dn": "ssl-client-subject-dn",
		"X-SSL-CLIENT-DN": "SSL-CLIENT-SUBJECT-DN", "X-SSL-Client-DN": "ssl-client-subject-dn", "X-SSL_Client-DN": "ssl-client_subject-dn"} {
		if got := respell(spelled, "ssl-client-subject-dn"); got != want {
			t.Errorf("respell(%q) = %q, want %q", spelled, got, want)
		}
	}
	// Under dlb a smuggled spelling goes out exactly as the feature wrote it.
	for _, spelled := range []string{"X-SSL_Client-DN", "x_ssl_client_dn", "X-SSL-Client_Verify"} {
		if got := respell(spelled, contract.HeaderDN); foldName(spelled) == foldName(contract.HeaderDN) && got != spelled {
			t.Errorf("respell(%q, dlb) = %q", spelled, got)
		}
	}
}

func TestOnlyRequestCountsRetriedAttemptsOnce(t *testing.T) {
	a := raw("X-SSL-Client-Verify", "SUCCESS", "X-SSL-Client-DN", "CN=a")
	b := raw("X-SSL-Client-Verify", "SUCCESS", "X-SSL-Client-DN", "CN=b")
	for _, tc := range []struct {
		name     string
		attempts int
		seen     []productapi.Echo
		ok       bool
	}{
		{"one request", 1, []productapi.Echo{a}, true},
		{"two requests of one attempt", 1, []productapi.Echo{a, a}, false},
		{"two attempts, both passed on alike", 2, []productapi.Echo{a, a}, true},
		{"two attempts, told apart", 2, []productapi.Echo{a, b}, false},
		{"more requests than attempts", 2, []productapi.Echo{a, a, a}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &scenario{suite: &Suite{Target: cannedTarget{seen: tc.seen}, Profile: contract.GenericHTTP400}}
			st.calls = []*call{{res: &partner.Result{Status: 200, Attempts: tc.attempts}}}
			_, _, err := st.onlyRequest(context.Background())
			if (err == nil) != tc.ok {
				t.Errorf("err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
