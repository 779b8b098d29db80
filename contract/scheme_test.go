package contract

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuiltinSchemesAreValid(t *testing.T) {
	names := SchemeNames()
	if names[0] != DefaultScheme {
		t.Errorf("first scheme %q, want the default %q", names[0], DefaultScheme)
	}
	for _, want := range []string{"dlb", "ingress-nginx", "envoy-xfcc", "rfc9440", "aws-alb", "traefik"} {
		s, err := LookupScheme(want)
		if err != nil {
			t.Fatalf("LookupScheme(%q): %v", want, err)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", want, err)
		}
		if s.Source == "" {
			t.Errorf("%s says nowhere where its names come from", want)
		}
	}
	if s, _ := LookupScheme(""); s.Name != DefaultScheme {
		t.Errorf("empty name gives %q, want %q", s.Name, DefaultScheme)
	}
	if _, err := LookupScheme("istio"); err == nil || !strings.Contains(err.Error(), "envoy-xfcc") {
		t.Errorf("unknown scheme: %v, want the list of built-in names", err)
	}
}

func TestDLBSchemeIsTheContractHeaders(t *testing.T) {
	s, _ := LookupScheme(DefaultScheme)
	got, want := s.Stripped(), ContractHeaders("")
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("dlb strips %q, the contract's headers are %q", got, want)
	}
}

func TestParseSchemeRefusesNamingTheField(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"no name", `cert: {header: X-Cert, encoding: url-pem}`, "field name is empty"},
		{"bad encoding", `{"name": "x", "cert": {"header": "X-Cert", "encoding": "pem"}}`, `field cert.encoding is "pem": use one of url-pem`},
		{"bad rendering", "name: x\ncert: {header: X-Cert, encoding: url-pem}\nsubject: {header: X-DN, rendering: ldap}", `field subject.rendering is "ldap"`},
		{"bad serial", "name: x\ncert: {header: X-Cert, encoding: url-pem}\nserial: {header: X-Serial, form: octal}", `field serial.form is "octal"`},
		{"header with space", "name: x\ncert: {header: X Cert, encoding: url-pem}", `field cert.header is "X Cert"`},
		{"misspelt field", "name: x\ncert: {header: X-Cert, encodng: url-pem}", "encodng"},
		{"verify values equal", "name: x\ncert: {header: X-Cert, encoding: url-pem}\nverify: {header: X-V, success: OK, failed: OK, none: NONE}", "must differ"},
		{"two facts in one header", "name: x\ncert: {header: X-Cert, encoding: url-pem}\nsubject: {header: x_cert, rendering: rfc2253}", "carries two values"},
		{"no cert", "name: x", "field cert.header is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScheme([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestSchemeFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, name := range SchemeNames() {
		s, _ := LookupScheme(name)
		data, err := s.MarshalIndent()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := ResolveScheme(path)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, data)
		}
		if back.Summary() != s.Summary() {
			t.Errorf("%s read back as\n%s\nwant\n%s", name, back.Summary(), s.Summary())
		}
	}
	yamlDoc := "name: team\nverify: {header: X-Client-Verified, success: \"true\", failed: \"false\", none: absent}\n" +
		"subject: {header: X-Forwarded-Client-Cert, field: Subject, rendering: rfc2253}\n" +
		"cert: {header: X-Forwarded-Client-Cert, field: Cert, encoding: url-pem}\n"
	path := filepath.Join(dir, "team.yaml")
	os.WriteFile(path, []byte(yamlDoc), 0o644)
	s, err := ResolveScheme(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Place(FactSubject); p.Field != "Subject" || s.Verify.Success != "true" {
		t.Errorf("YAML read as %+v", s)
	}
	if _, err := ResolveScheme(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "give the path") {
		t.Errorf("missing file: %v", err)
	}
}

func TestWithCertHeader(t *testing.T) {
	s, _ := LookupScheme("ingress-nginx")
	r, err := s.WithCertHeader("X-Client-Certificate")
	if err != nil || r.Cert.Header != "X-Client-Certificate" || s.Cert.Header != "ssl-client-cert" {
		t.Errorf("rename: %v, %q, original %q", err, r.Cert.Header, s.Cert.Header)
	}
	if _, err := s.WithCertHeader("SSL_Client_Verify"); err == nil {
		t.Error("renaming the certificate header onto the verify header was accepted")
	}
	x, _ := LookupScheme("envoy-xfcc")
	if _, err := x.WithCertHeader("X-Client-Certificate"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("renaming an XFCC field: %v, want not supported", err)
	}
}

func TestFactOf(t *testing.T) {
	for name, want := range map[string]Fact{"X-SSL-Client-Verify": FactVerify, "x-ssl-client-dn": FactSubject,
		"X-SSL-Issuer": FactIssuer, "X-SSL-Client-Serial": FactSerial, "X-WSO2-CLIENT-CERTIFICATE": FactCert, "X-Client-Certificate": FactCert} {
		if got, ok := FactOf(name, "X-Client-Certificate"); !ok || got != want {
			t.Errorf("FactOf(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := FactOf("X-Other", ""); ok {
		t.Error("an unknown header read as a fact")
	}
}

func TestIdentityHeadersGroupXFCCFields(t *testing.T) {
	x, _ := LookupScheme("envoy-xfcc")
	got := x.IdentityHeaders()
	if len(got) != 1 || !got[0].XFCC() || len(got[0].Fields) != 2 || got[0].Fields[0].Field != "Subject" || got[0].Fields[1].Field != "Cert" {
		t.Errorf("envoy-xfcc: %+v", got)
	}
	d, _ := LookupScheme(DefaultScheme)
	var names []string
	for _, h := range d.IdentityHeaders() {
		if h.XFCC() || len(h.Fields) != 1 {
			t.Errorf("dlb header %+v", h)
		}
		names = append(names, h.Header)
	}
	if strings.Join(names, ",") != strings.Join(ContractHeaders("")[1:], ",") {
		t.Errorf("dlb identity headers %q", names)
	}
}
