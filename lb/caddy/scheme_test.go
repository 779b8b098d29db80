package caddy

import (
	"errors"
	"strings"
	"testing"

	"mtlsconform/contract"
	"mtlsconform/lb"
	"mtlsconform/lb/lbtest"
)

// TestCaddySchemeFromProperties: a team's own scheme renders from what it
// asks for, not from its name; what Caddy cannot write is not supported,
// and bad input stays bad input.
func TestCaddySchemeFromProperties(t *testing.T) {
	xfcc := contract.Scheme{
		Name:    "team-xfcc",
		Verify:  &contract.VerifyHeader{Header: "X-Team-Verify", Success: "ok", Failed: "bad", None: "none"},
		Subject: &contract.DNHeader{Place: contract.Place{Header: "X-Team-Client", Field: "Subject"}, Rendering: contract.RFC2253},
		Serial:  &contract.SerialHeader{Place: contract.Place{Header: "X-Team-Client", Field: "Serial"}, Form: contract.SerialHexColons},
		Cert:    contract.CertHeader{Place: contract.Place{Header: "X-Team-Client", Field: "Cert"}, Encoding: contract.URLPEM},
	}
	r, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t\n"), Scheme: xfcc}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"X-Team-Verify": [` + "\n" + `                          "ok"`,
		`"X-Team-Verify": [` + "\n" + `                          "none"`,
		`Subject=\"{http.request.tls.client.subject}\";Serial=\"{http.request.header.Mtlsconform-Xfcc-Serial}\";Cert=\"{http.request.header.Mtlsconform-Xfcc-Cert}\"`,
		`"X_Team_Client"`,
	} {
		if !strings.Contains(r.Config, want) {
			t.Errorf("team-xfcc: the rendering lacks %s", want)
		}
	}

	decimal := xfcc
	decimal.Serial = &contract.SerialHeader{Place: contract.Place{Header: "X-Team-Serial"}, Form: contract.SerialDecimal}
	r, err = Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t\n"), Scheme: decimal}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Config, `"X-Team-Serial": [`+"\n"+`                          "`+caddyCertSerial+`"`) {
		t.Errorf("decimal serial: not Caddy's own serial placeholder")
	}

	for name, edit := range map[string]func(*contract.Scheme){
		"legacy DN":     func(s *contract.Scheme) { s.Subject.Rendering = contract.LegacySlash },
		"DER DN":        func(s *contract.Scheme) { s.Subject.Rendering = contract.Base64DER },
		"braced value":  func(s *contract.Scheme) { v := *s.Verify; v.Success = "{ok}"; s.Verify = &v },
		"backslash":     func(s *contract.Scheme) { v := *s.Verify; v.None = `no\ne`; s.Verify = &v },
		"control value": func(s *contract.Scheme) { v := *s.Verify; v.None = "no\tne"; s.Verify = &v },
	} {
		s := xfcc
		sub := *s.Subject
		s.Subject = &sub
		edit(&s)
		_, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t\n"), Scheme: s}, lbtest.Server)
		if !errors.Is(err, contract.ErrNotSupported) {
			t.Errorf("%s: err = %v, want contract.ErrNotSupported", name, err)
		}
	}
	bad := xfcc
	bad.Cert.Encoding = "pem"
	if _, err := (Balancer{}).Render(lb.Config{Mode: contract.Optional, Truststore: []byte("t\n"), Scheme: bad}, lbtest.Server); err == nil || errors.Is(err, contract.ErrNotSupported) {
		t.Errorf("unknown encoding: err = %v, want a configuration error", err)
	}
}
