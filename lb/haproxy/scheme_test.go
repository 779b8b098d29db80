package haproxy

import (
	"errors"
	"strings"
	"testing"

	"mtlsconform/contract"
	"mtlsconform/lb"
	"mtlsconform/lb/lbtest"
)

// TestHAProxySchemesStripEverySpelling: for every built-in scheme, every
// spelling of every header it sets or strips is deleted (C13, C18), and
// of the certificate header's name before a rename too.
func TestHAProxySchemesStripEverySpelling(t *testing.T) {
	for _, name := range contract.SchemeNames() {
		s, err := contract.LookupScheme(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, rename := range []string{"", "X-Team-Cert"} {
			if rename != "" && s.Cert.Field != "" {
				continue
			}
			r, err := Balancer{}.Render(lb.Config{Mode: contract.Mandatory, Truststore: []byte("trust\n"), Scheme: s, CertHeader: rename}, lbtest.Server)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			pats := haproxyDelHeaders(t, r.Config)
			want := s.Stripped()
			if rename != "" {
				want = append(want, rename)
			}
			for _, h := range want {
				for _, sp := range contract.Spellings(h) {
					deleted := false
					for _, p := range pats {
						deleted = deleted || p.MatchString(strings.ToLower(sp))
					}
					if !deleted {
						t.Errorf("%s (cert header %q): %s is not deleted", name, rename, sp)
					}
				}
			}
			for _, h := range []string{"Host", "X-Forwarded-For", "User-Agent"} {
				for _, p := range pats {
					if p.MatchString(strings.ToLower(h)) {
						t.Errorf("%s: %s is deleted", name, h)
					}
				}
			}
		}
	}
}

// TestHAProxyCustomScheme: a team's own scheme renders from its
// properties: legacy DNs, colon-separated serials, verify values that
// need quoting.
func TestHAProxyCustomScheme(t *testing.T) {
	s := contract.Scheme{
		Name:    "team",
		Verify:  &contract.VerifyHeader{Header: "X-Team-Verify", Success: "ok", Failed: `bad "cert" 100%`, None: "$none"},
		Subject: &contract.DNHeader{Place: contract.Place{Header: "X-Team-Subject"}, Rendering: contract.LegacySlash},
		Serial:  &contract.SerialHeader{Place: contract.Place{Header: "X-Team-Serial"}, Form: contract.SerialHexColons},
		Cert:    contract.CertHeader{Place: contract.Place{Header: "X-Team-Cert"}, Encoding: contract.RFC9440},
	}
	r, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("trust\n"), Scheme: s}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"http-request set-header X-Team-Verify \"\\$none\"             if !{ ssl_c_used }\n",
		"http-request set-header X-Team-Verify ok                   if { ssl_c_used } { ssl_c_verify 0 }\n",
		"http-request set-header X-Team-Verify \"bad \\\"cert\\\" 100%%\" if { ssl_c_used } !{ ssl_c_verify 0 }\n",
		"http-request set-header X-Team-Subject %[ssl_c_s_dn] if { ssl_c_used }\n",
		`http-request set-header X-Team-Serial '%[ssl_c_serial,hex,regsub("(..)(?=.)","\1:",g)]' if { ssl_c_used }` + "\n",
		"http-request set-header X-Team-Cert ':%[var(txn.mtls_cert)]:' if { ssl_c_used }\n",
		"acl mtls_dn_fits     ssl_c_s_dn,length le 2048\n",
	} {
		if !strings.Contains(r.Config, want) {
			t.Errorf("the rendering has no %q:\n%s", want, r.Config)
		}
	}
	if strings.Contains(r.Config, "mtls_issuer_fits") {
		t.Error("a scheme without an issuer header guards the issuer's size")
	}
}

// TestHAProxySchemeNotSupported: what HAProxy 2.6 has no fetch or
// converter for is not supported, with the reason; bad input stays bad.
func TestHAProxySchemeNotSupported(t *testing.T) {
	base := func() contract.Scheme {
		s, _ := contract.LookupScheme("dlb")
		return s
	}
	der := base()
	der.Issuer = &contract.DNHeader{Place: der.Issuer.Place, Rendering: contract.Base64DER}
	dec := base()
	dec.Serial = &contract.SerialHeader{Place: dec.Serial.Place, Form: contract.SerialDecimal}
	ctl := base()
	ctl.Verify = &contract.VerifyHeader{Header: ctl.Verify.Header, Success: "SUCCESS", Failed: "FAILED\nX", None: "NONE"}
	for name, s := range map[string]contract.Scheme{"base64-der DN": der, "decimal serial": dec, "control character": ctl} {
		_, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("trust\n"), Scheme: s}, lbtest.Server)
		if !errors.Is(err, contract.ErrNotSupported) {
			t.Errorf("%s: error %v, want contract.ErrNotSupported", name, err)
		}
		_, err = Balancer{}.Render(lb.Config{Mode: contract.Optional, Scheme: s}, lbtest.Server)
		if err == nil || errors.Is(err, contract.ErrNotSupported) {
			t.Errorf("%s without a truststore: error %v, want bad input", name, err)
		}
	}
}
