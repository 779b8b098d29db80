package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A Scheme is a header set: the headers in which a balancer hands the
// backend what it learned of the caller's certificate, and how each value
// is written. The contract's header clauses (C8–C14, C18–C21) check the
// scheme in force; the features name each fact by the dlb scheme's header
// (X-SSL-Client-Verify is "the verification result", whatever the scheme
// calls it).
type Scheme struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Source says where the names and encodings come from.
	Source string `json:"source,omitempty" yaml:"source,omitempty"`
	// Verify is the verification result; nil when the scheme sends none,
	// and then the certificate's headers are present exactly when the
	// certificate was verified.
	Verify  *VerifyHeader `json:"verify,omitempty" yaml:"verify,omitempty"`
	Subject *DNHeader     `json:"subject,omitempty" yaml:"subject,omitempty"`
	Issuer  *DNHeader     `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	Serial  *SerialHeader `json:"serial,omitempty" yaml:"serial,omitempty"`
	// Cert is the presented leaf; every scheme forwards it.
	Cert CertHeader `json:"cert" yaml:"cert"`
	// Strip are more headers the balancer must remove from every request
	// besides the scheme's own (a sibling header the edge also sets).
	Strip []string `json:"strip,omitempty" yaml:"strip,omitempty"`
}

// VerifyHeader is the verification result's header and its three values.
type VerifyHeader struct {
	Header  string `json:"header" yaml:"header"`
	Success string `json:"success" yaml:"success"`
	// Failed is the value for a certificate that failed verification; with
	// FailedPrefix the value only starts with it (nginx's "FAILED:reason").
	Failed       string `json:"failed" yaml:"failed"`
	FailedPrefix bool   `json:"failed_prefix,omitempty" yaml:"failed_prefix,omitempty"`
	// None is the value when the caller presented no certificate.
	None string `json:"none" yaml:"none"`
}

// Place is where a value goes: a header of its own, or a field of an
// Envoy-style x-forwarded-client-cert element in Header.
type Place struct {
	Header string `json:"header" yaml:"header"`
	// Field names the XFCC field (Cert, Chain, Subject, Hash …); empty
	// means the header's whole value.
	Field string `json:"field,omitempty" yaml:"field,omitempty"`
}

func (p Place) String() string {
	if p.Field != "" {
		return p.Header + " field " + p.Field
	}
	return p.Header
}

// DNHeader is a distinguished name and its rendering family.
type DNHeader struct {
	Place     `yaml:",inline"`
	Rendering DNRendering `json:"rendering" yaml:"rendering"`
}

// SerialHeader is the serial number and its form.
type SerialHeader struct {
	Place `yaml:",inline"`
	Form  SerialForm `json:"form" yaml:"form"`
}

// CertHeader is the presented leaf certificate and its encoding.
type CertHeader struct {
	Place    `yaml:",inline"`
	Encoding CertEncoding `json:"encoding" yaml:"encoding"`
}

// DNRendering is a family of DN renderings. Within a family values compare
// canonically (attribute names or OIDs, spacing, escaping); another family
// is another value to a backend's parser.
type DNRendering string

const (
	// RFC2253: CN first, comma-separated (nginx $ssl_client_s_dn, HAProxy
	// rfc2253, Apache, AWS ALB).
	RFC2253 DNRendering = "rfc2253"
	// LegacySlash: OpenSSL's one-line "/C=../O=../CN=.." form, root first
	// (nginx $ssl_client_s_dn_legacy).
	LegacySlash DNRendering = "legacy"
	// Base64DER: the DN's DER in base64 (Google Cloud's load balancer).
	Base64DER DNRendering = "base64-der"
)

// SerialForm is how a serial number is written.
type SerialForm string

const (
	SerialHex       SerialForm = "hex"        // upper-case hex digits: 1A2B
	SerialHexColons SerialForm = "hex-colons" // 1A:2B
	SerialDecimal   SerialForm = "decimal"    // 6699
)

// CertEncoding is how a certificate is written into a header or field.
type CertEncoding string

const (
	// URLPEM: PEM with every character outside the unreserved set
	// percent-encoded, so percent- and form-decoding both recover it
	// (nginx $ssl_client_escaped_cert, Envoy's Cert field).
	URLPEM CertEncoding = "url-pem"
	// URLPEMRawPlus: URL-encoded PEM that leaves + = / raw (AWS ALB);
	// percent-decoding recovers it, form-decoding would not.
	URLPEMRawPlus CertEncoding = "url-pem-raw-plus"
	// Base64DERCert: the DER in base64, no PEM armour, no line breaks.
	Base64DERCert CertEncoding = "base64-der"
	// RFC9440: an RFC 8941 byte sequence, ":" base64 DER ":".
	RFC9440 CertEncoding = "rfc9440"
)

var (
	dnRenderings  = []DNRendering{RFC2253, LegacySlash, Base64DER}
	serialForms   = []SerialForm{SerialHex, SerialHexColons, SerialDecimal}
	certEncodings = []CertEncoding{URLPEM, URLPEMRawPlus, Base64DERCert, RFC9440}
)

// DefaultScheme is the header set the contract was written for.
const DefaultScheme = "dlb"

// Schemes are the built-in schemes, by name.
func Schemes() map[string]Scheme {
	m := map[string]Scheme{}
	for _, s := range builtin() {
		m[s.Name] = s
	}
	return m
}

// SchemeNames are the built-in schemes' names, dlb first.
func SchemeNames() []string {
	var n []string
	for _, s := range builtin() {
		n = append(n, s.Name)
	}
	return n
}

func dn(header string, r DNRendering) *DNHeader {
	return &DNHeader{Place: Place{Header: header}, Rendering: r}
}

func builtin() []Scheme {
	const xfcc = "X-Forwarded-Client-Cert"
	return []Scheme{
		{
			Name:        DefaultScheme,
			Description: "the DLB's header set: X-SSL-Client-Verify SUCCESS/FAILED/NONE, RFC 2253 DNs, hex serial, URL-encoded PEM for a gateway such as WSO2",
			Source:      "the DLB documentation; WSO2 API Manager's X-WSO2-CLIENT-CERTIFICATE",
			Verify:      &VerifyHeader{Header: HeaderVerify, Success: "SUCCESS", Failed: "FAILED", None: "NONE"},
			Subject:     dn(HeaderDN, RFC2253),
			Issuer:      dn(HeaderIssuer, RFC2253),
			Serial:      &SerialHeader{Place: Place{Header: HeaderSerial}, Form: SerialHex},
			Cert:        CertHeader{Place: Place{Header: DefaultCertHeader}, Encoding: URLPEM},
		},
		{
			Name:        "ingress-nginx",
			Description: "Kubernetes ingress-nginx with auth-tls-secret and auth-tls-pass-certificate-to-upstream: nginx's own variables under lower-case names",
			Source:      "kubernetes/ingress-nginx rootfs/etc/nginx/template/nginx.tmpl; docs user-guide/nginx-configuration/annotations (Client Certificate Authentication)",
			Verify:      &VerifyHeader{Header: "ssl-client-verify", Success: "SUCCESS", Failed: "FAILED", FailedPrefix: true, None: "NONE"},
			Subject:     dn("ssl-client-subject-dn", RFC2253),
			Issuer:      dn("ssl-client-issuer-dn", RFC2253),
			Cert:        CertHeader{Place: Place{Header: "ssl-client-cert"}, Encoding: URLPEM},
		},
		{
			Name:        "envoy-xfcc",
			Description: "Envoy/Istio x-forwarded-client-cert (SANITIZE_SET, set_current_client_cert_details subject and cert): Cert and Subject fields, quoted; no verify value, an unverified certificate is not forwarded",
			Source:      "Envoy docs: configuration/http/http_conn_man/headers (x-forwarded-client-cert)",
			Subject:     &DNHeader{Place: Place{Header: xfcc, Field: "Subject"}, Rendering: RFC2253},
			Cert:        CertHeader{Place: Place{Header: xfcc, Field: "Cert"}, Encoding: URLPEM},
		},
		{
			Name:        "rfc9440",
			Description: "RFC 9440 Client-Cert: the leaf as a structured-field byte sequence; no verify value, an unverified certificate is not forwarded",
			Source:      "RFC 9440 sections 2.2 and 2.4",
			Cert:        CertHeader{Place: Place{Header: "Client-Cert"}, Encoding: RFC9440},
			Strip:       []string{"Client-Cert-Chain"},
		},
		{
			Name:        "aws-alb",
			Description: "AWS Application Load Balancer, mTLS verify mode: X-Amzn-Mtls-Clientcert-* with the leaf URL-encoded leaving + = / raw, RFC 2253 DNs, hex serial; no verify value",
			Source:      "AWS docs: elasticloadbalancing application/mutual-authentication (HTTP headers)",
			Subject:     dn("X-Amzn-Mtls-Clientcert-Subject", RFC2253),
			Issuer:      dn("X-Amzn-Mtls-Clientcert-Issuer", RFC2253),
			Serial:      &SerialHeader{Place: Place{Header: "X-Amzn-Mtls-Clientcert-Serial-Number"}, Form: SerialHex},
			Cert:        CertHeader{Place: Place{Header: "X-Amzn-Mtls-Clientcert-Leaf"}, Encoding: URLPEMRawPlus},
			Strip:       []string{"X-Amzn-Mtls-Clientcert-Validity", "X-Amzn-Mtls-Clientcert"},
		},
		{
			Name:        "traefik",
			Description: "Traefik passTLSClientCert with pem: the leaf's DER in base64 without PEM armour; no verify value",
			Source:      "Traefik docs: middlewares/http/passtlsclientcert; pkg/middlewares/passtlsclientcert",
			Cert:        CertHeader{Place: Place{Header: "X-Forwarded-Tls-Client-Cert"}, Encoding: Base64DERCert},
			Strip:       []string{"X-Forwarded-Tls-Client-Cert-Info"},
		},
	}
}

// LookupScheme finds a built-in scheme by name.
func LookupScheme(name string) (Scheme, error) {
	if name == "" {
		name = DefaultScheme
	}
	if s, ok := Schemes()[name]; ok {
		return s, nil
	}
	return Scheme{}, fmt.Errorf("unknown header scheme %q: use one of %s, or give a scheme file (see README, Header schemes)",
		name, strings.Join(SchemeNames(), ", "))
}

// ResolveScheme is what --scheme names: a built-in scheme's name, or a
// JSON or YAML file (a name with a "/" or ending .json, .yaml or .yml).
func ResolveScheme(arg string) (Scheme, error) {
	if strings.ContainsRune(arg, '/') || slices.Contains([]string{".json", ".yaml", ".yml"}, strings.ToLower(filepath.Ext(arg))) {
		return LoadScheme(arg)
	}
	return LookupScheme(arg)
}

// LoadScheme reads a scheme file, JSON or YAML, and checks it.
func LoadScheme(path string) (Scheme, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scheme{}, fmt.Errorf("read header scheme: %w: give the path of a JSON or YAML scheme file", err)
	}
	s, err := ParseScheme(data)
	if err != nil {
		return Scheme{}, fmt.Errorf("header scheme %s: %w", path, err)
	}
	return s, nil
}

// ParseScheme reads a scheme from JSON or YAML (JSON is YAML too) and
// checks it; unknown fields are refused, so a misspelt field is not
// silently ignored.
func ParseScheme(data []byte) (Scheme, error) {
	var s Scheme
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Scheme{}, fmt.Errorf("not a scheme in JSON or YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return s, s.Validate()
}

// Validate checks a scheme names what it must, with values this tool knows.
func (s Scheme) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("field name is empty: give the scheme a name")
	}
	if s.Verify != nil {
		v := s.Verify
		if err := headerName("verify.header", v.Header); err != nil {
			return err
		}
		if v.Success == "" || v.Failed == "" {
			return fmt.Errorf("fields verify.success and verify.failed need values (the dlb scheme's are SUCCESS and FAILED)")
		}
		if v.Success == v.Failed || v.Success == v.None || v.Failed == v.None {
			return fmt.Errorf("fields verify.success, verify.failed and verify.none must differ, so a backend can tell them apart")
		}
	}
	for _, d := range []struct {
		field string
		dn    *DNHeader
	}{{"subject", s.Subject}, {"issuer", s.Issuer}} {
		if d.dn == nil {
			continue
		}
		if err := d.dn.Place.check(d.field); err != nil {
			return err
		}
		if !slices.Contains(dnRenderings, d.dn.Rendering) {
			return fmt.Errorf("field %s.rendering is %q: use one of %s", d.field, d.dn.Rendering, join(dnRenderings))
		}
	}
	if s.Serial != nil {
		if err := s.Serial.Place.check("serial"); err != nil {
			return err
		}
		if !slices.Contains(serialForms, s.Serial.Form) {
			return fmt.Errorf("field serial.form is %q: use one of %s", s.Serial.Form, join(serialForms))
		}
	}
	if s.Cert.Header == "" {
		return fmt.Errorf("field cert.header is empty: every scheme forwards the certificate, name its header")
	}
	if err := s.Cert.Place.check("cert"); err != nil {
		return err
	}
	if !slices.Contains(certEncodings, s.Cert.Encoding) {
		return fmt.Errorf("field cert.encoding is %q: use one of %s", s.Cert.Encoding, join(certEncodings))
	}
	for i, h := range s.Strip {
		if err := headerName(fmt.Sprintf("strip[%d]", i), h); err != nil {
			return err
		}
	}
	// Two facts in one header: only as fields of one XFCC header.
	seen := map[string]Place{}
	for _, p := range s.places() {
		k := FoldHeader(p.Header)
		if q, ok := seen[k]; ok && (p.Field == "" || q.Field == "" || p.Field == q.Field) {
			return fmt.Errorf("header %s carries two values (%s and %s): give each its own header, or each its own XFCC field", p.Header, q, p)
		}
		seen[k] = p
	}
	return nil
}

func (p Place) check(field string) error {
	if err := headerName(field+".header", p.Header); err != nil {
		return err
	}
	if p.Field != "" && !Token(p.Field) {
		return fmt.Errorf("field %s.field is %q: an XFCC field name is letters and digits (Cert, Subject, Hash …)", field, p.Field)
	}
	return nil
}

func headerName(field, v string) error {
	if !Token(v) {
		return fmt.Errorf("field %s is %q: give a header name (letters, digits, - _ . only)", field, v)
	}
	return nil
}

// Token says whether s is a header name that needs no quoting in any
// balancer's configuration: letters, digits, - _ and . only.
func Token(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func join[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// FoldHeader is a header name as a backend may read it: letter case and
// "_" for "-" make no difference (C18).
func FoldHeader(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

func (s Scheme) places() []Place {
	var p []Place
	if s.Verify != nil {
		p = append(p, Place{Header: s.Verify.Header})
	}
	if s.Subject != nil {
		p = append(p, s.Subject.Place)
	}
	if s.Issuer != nil {
		p = append(p, s.Issuer.Place)
	}
	if s.Serial != nil {
		p = append(p, s.Serial.Place)
	}
	return append(p, s.Cert.Place)
}

// Headers are the names of the headers the scheme sets, each once, in the
// scheme's order.
func (s Scheme) Headers() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range s.places() {
		if k := http.CanonicalHeaderKey(p.Header); !seen[k] {
			seen[k] = true
			out = append(out, p.Header)
		}
	}
	return out
}

// Stripped are the headers a balancer removes from every request: the
// scheme's own and its Strip list.
func (s Scheme) Stripped() []string {
	out := s.Headers()
	for _, h := range s.Strip {
		if !slices.ContainsFunc(out, func(o string) bool { return FoldHeader(o) == FoldHeader(h) }) {
			out = append(out, h)
		}
	}
	return out
}

// WithCertHeader renames the certificate's header (C14: a team chooses
// it). A certificate in an XFCC field has no header of its own to rename.
func (s Scheme) WithCertHeader(name string) (Scheme, error) {
	if name == "" || name == s.Cert.Header {
		return s, nil
	}
	if s.Cert.Field != "" {
		return s, Unsupported("scheme %s carries the certificate in the %s field of %s, not in a header of its own to rename", s.Name, s.Cert.Field, s.Cert.Header)
	}
	for _, h := range s.Stripped() {
		if FoldHeader(h) == FoldHeader(name) {
			return s, fmt.Errorf("certificate header name %q is the scheme's %s header in another spelling: choose another name", name, h)
		}
	}
	s.Cert.Header = name
	return s, nil
}

// Facts names what each header of the features' tables is in this scheme:
// the dlb names are the facts' ids.
type Fact string

const (
	FactVerify  Fact = "verification result"
	FactSubject Fact = "subject DN"
	FactIssuer  Fact = "issuer DN"
	FactSerial  Fact = "serial"
	FactCert    Fact = "certificate"
)

// FactOf reads a features table's header name as a fact: a dlb header
// name, or certHeader (the scenario's certificate header).
func FactOf(name, certHeader string) (Fact, bool) {
	switch FoldHeader(name) {
	case FoldHeader(HeaderVerify):
		return FactVerify, true
	case FoldHeader(HeaderDN):
		return FactSubject, true
	case FoldHeader(HeaderIssuer):
		return FactIssuer, true
	case FoldHeader(HeaderSerial):
		return FactSerial, true
	case FoldHeader(DefaultCertHeader):
		return FactCert, true
	}
	if certHeader != "" && FoldHeader(name) == FoldHeader(certHeader) {
		return FactCert, true
	}
	return "", false
}

// Place says where the scheme puts a fact; ok is false when it sends none.
func (s Scheme) Place(f Fact) (Place, bool) {
	switch f {
	case FactVerify:
		if s.Verify != nil {
			return Place{Header: s.Verify.Header}, true
		}
	case FactSubject:
		if s.Subject != nil {
			return s.Subject.Place, true
		}
	case FactIssuer:
		if s.Issuer != nil {
			return s.Issuer.Place, true
		}
	case FactSerial:
		if s.Serial != nil {
			return s.Serial.Place, true
		}
	case FactCert:
		return s.Cert.Place, true
	}
	return Place{}, false
}

// Summary is one line on what the scheme forwards, for reports.
func (s Scheme) Summary() string {
	var parts []string
	if s.Verify != nil {
		parts = append(parts, fmt.Sprintf("verify %s (%s/%s/%s)", s.Verify.Header, s.Verify.Success, s.Verify.Failed, s.Verify.None))
	} else {
		parts = append(parts, "no verify value")
	}
	if s.Subject != nil {
		parts = append(parts, fmt.Sprintf("subject %s (%s)", s.Subject.Place, s.Subject.Rendering))
	}
	if s.Issuer != nil {
		parts = append(parts, fmt.Sprintf("issuer %s (%s)", s.Issuer.Place, s.Issuer.Rendering))
	}
	if s.Serial != nil {
		parts = append(parts, fmt.Sprintf("serial %s (%s)", s.Serial.Place, s.Serial.Form))
	}
	parts = append(parts, fmt.Sprintf("certificate %s (%s)", s.Cert.Place, s.Cert.Encoding))
	return s.Name + ": " + strings.Join(parts, ", ")
}

// MarshalIndent is the scheme as a file (JSON) a team can start from.
func (s Scheme) MarshalIndent() ([]byte, error) {
	return json.MarshalIndent(s, "", "  ")
}

// CoverageNote says how the scheme changes what the header clauses
// verify; empty when it changes nothing.
func (s Scheme) CoverageNote() string {
	var notes []string
	if s.Verify == nil {
		notes = append(notes, fmt.Sprintf("scheme %s sends no verify value: C8–C11 are checked as the presence (SUCCESS) or absence (NONE, FAILED) of its certificate headers", s.Name))
	}
	var missing []string
	for _, f := range []Fact{FactSubject, FactIssuer, FactSerial} {
		if _, ok := s.Place(f); !ok {
			missing = append(missing, string(f))
		}
	}
	if len(missing) > 0 {
		notes = append(notes, fmt.Sprintf("it forwards no %s: C12 checks what it does forward, those are not checked", strings.Join(missing, ", ")))
	}
	return strings.Join(notes, "; ")
}

// IdentityFacts are the facts of the certificate itself, in the order a
// scheme lists them; Facts are every fact, the verification result first.
var (
	IdentityFacts = []Fact{FactSubject, FactIssuer, FactSerial, FactCert}
	Facts         = append([]Fact{FactVerify}, IdentityFacts...)
)

// HeaderFacts is one header a scheme sets for the certificate: one fact in
// a header of its own (Field empty), or the fields of one XFCC element.
type HeaderFacts struct {
	Header string
	Fields []FieldFact
}

// FieldFact is a fact and the XFCC field it goes in ("" for a header of
// its own).
type FieldFact struct {
	Fact  Fact
	Field string
}

// XFCC says whether the header is an x-forwarded-client-cert element.
func (h HeaderFacts) XFCC() bool { return h.Fields[0].Field != "" }

// IdentityHeaders groups the scheme's identity facts by the header that
// carries them, each header where its first fact comes.
func (s Scheme) IdentityHeaders() []HeaderFacts {
	var out []HeaderFacts
	at := map[string]int{}
	for _, f := range IdentityFacts {
		p, ok := s.Place(f)
		if !ok {
			continue
		}
		i, seen := at[p.Header]
		if !seen {
			i = len(out)
			at[p.Header] = i
			out = append(out, HeaderFacts{Header: p.Header})
		}
		out[i].Fields = append(out[i].Fields, FieldFact{Fact: f, Field: p.Field})
	}
	return out
}
