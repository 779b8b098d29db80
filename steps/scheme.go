package steps

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"

	"github.com/google/go-cmp/cmp"
)

// The features name each forwarded fact by the dlb scheme's header
// (X-SSL-Client-Verify is the verification result); the scheme in force
// says where a balancer puts it and how it writes it. What follows reads
// facts out of what the backend received, in the scheme's terms, and
// turns them into tokens the features' values compare with: SUCCESS,
// FAILED, NONE for the verification result; canonical DNs; hex serials;
// certificates by fingerprint. A value in another rendering becomes a
// token that says which rendering it came in and which the scheme wants,
// so it never equals what the table asks for.

// scheme is the scenario's header scheme: the suite's, with the
// certificate header the scenario configured.
func (st *scenario) scheme() (contract.Scheme, error) {
	s := st.suite.scheme()
	if st.cfg.CertHeader == "" {
		return s, nil
	}
	return s.WithCertHeader(st.cfg.CertHeader)
}

// HeaderScheme is the run's header scheme, dlb when none was given.
func (s *Suite) HeaderScheme() contract.Scheme { return s.scheme() }

func (s *Suite) scheme() contract.Scheme {
	if s.Scheme.Name == "" {
		d, _ := contract.LookupScheme(contract.DefaultScheme)
		return d
	}
	return s.Scheme
}

// mustScheme is the scenario's scheme where a configuration step has
// already accepted the certificate header (certHeader checks it).
func (st *scenario) mustScheme() contract.Scheme {
	s, err := st.scheme()
	if err != nil {
		return st.suite.scheme()
	}
	return s
}

// schemeFolds are the folded names of every header the scheme sets or
// strips (C13, C18, C19).
func (st *scenario) schemeFolds() map[string]bool {
	m := map[string]bool{}
	for _, n := range st.mustScheme().Stripped() {
		m[foldName(n)] = true
	}
	return m
}

// placeValue reads one place out of the backend's headers: the header's
// value, or a field of its XFCC element. ok is false when it is absent;
// problem says why a present value cannot be read as the scheme writes it.
func placeValue(h http.Header, p contract.Place) (value, problem string, ok bool) {
	v := strings.TrimSpace(strings.Join(h.Values(p.Header), ", "))
	if v == "" {
		return "", "", false
	}
	if p.Field == "" {
		return v, "", true
	}
	elems, err := parseXFCC(v)
	if err != nil {
		return v, fmt.Sprintf("unreadable %s (%v): %s", p.Header, err, abbreviate(v, 80)), true
	}
	if len(elems) != 1 {
		return v, fmt.Sprintf("%s with %d elements where the balancer sets exactly one (a caller's element was passed on): %s", p.Header, len(elems), abbreviate(v, 80)), true
	}
	f, ok := elems[0][strings.ToLower(p.Field)]
	if !ok {
		return "", "", false
	}
	if !f.quoted && xfccQuoted[strings.ToLower(p.Field)] {
		return f.value, fmt.Sprintf("%s field %s unquoted (Envoy always quotes it; a value with , ; or = then breaks the parse): %s", p.Header, p.Field, abbreviate(f.value, 60)), true
	}
	return f.value, "", true
}

// xfccQuoted are the XFCC fields Envoy always writes double-quoted.
var xfccQuoted = map[string]bool{"cert": true, "chain": true, "subject": true}

type xfccField struct {
	value  string
	quoted bool
}

// parseXFCC reads an x-forwarded-client-cert value: elements separated by
// ",", key=value pairs by ";", values optionally double-quoted;
// separators inside quotes are part of the value, and so is a backslash
// escape (\" does not end the quote): Envoy writes the Subject as RFC
// 2253 text, whose own escapes stay as they are.
func parseXFCC(v string) ([]map[string]xfccField, error) {
	var elems []map[string]xfccField
	cur := map[string]xfccField{}
	var key, val strings.Builder
	inKey, quoted, wasQuoted := true, false, false
	flush := func() error {
		k := strings.ToLower(strings.TrimSpace(key.String()))
		if k == "" && val.Len() == 0 {
			return nil
		}
		if k == "" || inKey {
			return fmt.Errorf("a pair without key=value near %q", abbreviate(key.String(), 30))
		}
		cur[k] = xfccField{value: val.String(), quoted: wasQuoted}
		key.Reset()
		val.Reset()
		inKey, wasQuoted = true, false
		return nil
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted && c == '\\' && i+1 < len(v):
			val.WriteByte(c)
			val.WriteByte(v[i+1])
			i++
		case quoted && c == '"':
			quoted = false
		case quoted:
			val.WriteByte(c)
		case inKey && c == '=':
			inKey = false
		case inKey:
			key.WriteByte(c)
		case c == '"' && val.Len() == 0:
			quoted, wasQuoted = true, true
		case c == ';' || c == ',':
			if err := flush(); err != nil {
				return nil, err
			}
			if c == ',' {
				elems = append(elems, cur)
				cur = map[string]xfccField{}
			}
		default:
			val.WriteByte(c)
		}
	}
	if quoted {
		return nil, fmt.Errorf("an unterminated quote")
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return append(elems, cur), nil
}

// factToken turns a fact's value, as the scheme writes it, into the token
// the tables compare.
func factToken(s contract.Scheme, f contract.Fact, v string) string {
	switch f {
	case contract.FactVerify:
		return verifyToken(s.Verify, v)
	case contract.FactSubject:
		return dnToken(s.Subject.Rendering, v)
	case contract.FactIssuer:
		return dnToken(s.Issuer.Rendering, v)
	case contract.FactSerial:
		return serialToken(s.Serial.Form, v)
	}
	return certToken(s.Cert.Encoding, v)
}

// verifyToken maps the scheme's values to the dlb's words.
func verifyToken(vh *contract.VerifyHeader, v string) string {
	switch {
	case v == vh.Success:
		return "SUCCESS"
	case v == vh.None:
		return "NONE"
	case v == vh.Failed, vh.FailedPrefix && strings.HasPrefix(v, vh.Failed):
		return "FAILED"
	}
	return fmt.Sprintf("%q (none of the scheme's values %q, %q, %q)", v, vh.Success, vh.Failed, vh.None)
}

func dnToken(r contract.DNRendering, v string) string {
	v = strings.TrimSpace(v)
	slash := strings.HasPrefix(v, "/")
	switch r {
	case contract.LegacySlash:
		if !slash {
			return fmt.Sprintf("%q in RFC 2253 form, where the scheme wants OpenSSL's legacy slash form (/C=../CN=.., root first)", v)
		}
		return normalDN(v)
	case contract.Base64DER:
		if slash || strings.Contains(v, ",") || strings.Contains(strings.TrimRight(v, "="), "=") {
			return fmt.Sprintf("%q is a DN in text, where the scheme wants the DN's DER in base64", v)
		}
		der, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return fmt.Sprintf("%q is not base64 (%v), where the scheme wants the DN's DER in base64", abbreviate(v, 60), err)
		}
		return certDN(der)
	}
	if isBase64DN(v) {
		return fmt.Sprintf("%q is a DN's DER in base64, where the scheme wants RFC 2253 (CN first, comma-separated)", abbreviate(v, 60))
	}
	return headerDN(v)
}

// isBase64DN says whether v is the base64 of a DN's DER.
func isBase64DN(v string) bool {
	der, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(der) == 0 {
		return false
	}
	var seq pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &seq)
	return err == nil && len(rest) == 0 && len(seq) > 0
}

var (
	hexDigits   = regexp.MustCompile(`^[0-9A-Fa-f]+$`)
	hexColons   = regexp.MustCompile(`^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*$`)
	decimalOnly = regexp.MustCompile(`^[0-9]+$`)
)

func serialToken(form contract.SerialForm, v string) string {
	v = strings.TrimSpace(v)
	switch form {
	case contract.SerialHexColons:
		if !hexColons.MatchString(v) {
			return fmt.Sprintf("%q, where the scheme wants hex pairs separated by colons (1A:2B)", v)
		}
	case contract.SerialDecimal:
		n, ok := new(big.Int).SetString(v, 10)
		if !decimalOnly.MatchString(v) || !ok {
			return fmt.Sprintf("%q, where the scheme wants the serial in decimal", v)
		}
		return normalSerial(n.Text(16))
	default:
		if !hexDigits.MatchString(v) {
			return fmt.Sprintf("%q, where the scheme wants the serial in hex digits without separators", v)
		}
	}
	return normalSerial(v)
}

// certToken reads a certificate as the scheme encodes it and names it by
// fingerprint; anything else says what it is.
func certToken(enc contract.CertEncoding, v string) string {
	v = strings.TrimSpace(v)
	switch enc {
	case contract.URLPEM:
		// Percent-decoding and form-decoding (a gateway such as WSO2 form-
		// decodes; a raw "+" becomes a space) must both recover it.
		if strings.ContainsAny(v, "+ \n") {
			return fmt.Sprintf("PEM with raw %s, where the scheme wants every reserved character URL-encoded: %s", rawChars(v), abbreviate(v, 60))
		}
		pct, err1 := url.PathUnescape(v)
		form, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return fmt.Sprintf("not URL-encoded PEM (%v): %s", firstErr(err1, err2), abbreviate(v, 60))
		}
		a, b := pemCertsToken(pct), pemCertsToken(form)
		if a != b {
			return fmt.Sprintf("%s after percent-decoding but %s after form-decoding", a, b)
		}
		return a
	case contract.URLPEMRawPlus:
		pct, err := url.PathUnescape(v)
		if err != nil {
			return fmt.Sprintf("not URL-encoded PEM (%v): %s", err, abbreviate(v, 60))
		}
		return pemCertsToken(pct)
	case contract.RFC9440:
		if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
			if strings.Contains(v, "-----BEGIN") || strings.Contains(v, "%2D%2D") {
				return fmt.Sprintf("PEM, where the scheme wants an RFC 9440 byte sequence (:base64 DER:): %s", abbreviate(v, 60))
			}
			return fmt.Sprintf("not an RFC 9440 byte sequence (:base64 DER:): %s", abbreviate(v, 60))
		}
		return derListToken(strings.Split(v[1:len(v)-1], ":, :"), "an RFC 9440 list")
	}
	if strings.Contains(v, "-----BEGIN") || strings.Contains(v, "%2D%2D") {
		return fmt.Sprintf("PEM, where the scheme wants base64 DER without armour: %s", abbreviate(v, 60))
	}
	return derListToken(strings.Split(v, ","), "a comma-joined list")
}

func rawChars(v string) string {
	var c []string
	for _, r := range []string{"+", " ", "\n"} {
		if strings.Contains(v, r) {
			c = append(c, map[string]string{"+": `"+"`, " ": "spaces", "\n": "line breaks"}[r])
		}
	}
	return strings.Join(c, " and ")
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// pemCertsToken names the one certificate in PEM text; more than one is
// a chain where the scheme wants the leaf.
func pemCertsToken(s string) string {
	var fps []string
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		certs, err := pki.ParseCertificates("header", pem.EncodeToMemory(block))
		if err != nil {
			return "PEM that is not a certificate: " + abbreviate(s, 60)
		}
		fps = append(fps, pki.Fingerprint(certs[0]))
	}
	return certListToken(fps, "not a PEM certificate: "+abbreviate(s, 60))
}

func derListToken(parts []string, what string) string {
	var fps []string
	for _, p := range parts {
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(p))
		if err != nil {
			return fmt.Sprintf("not base64 DER (%v): %s", err, abbreviate(p, 60))
		}
		certs, err := pki.ParseCertificates("header", der)
		if err != nil {
			return "base64 that is not a certificate's DER: " + abbreviate(p, 60)
		}
		fps = append(fps, pki.Fingerprint(certs[0]))
	}
	if len(fps) > 1 {
		return certListToken(fps, "") + " (" + what + ")"
	}
	return certListToken(fps, "empty")
}

func certListToken(fps []string, none string) string {
	switch len(fps) {
	case 0:
		return none
	case 1:
		return "certificate sha256:" + fps[0]
	}
	return fmt.Sprintf("%d certificates (sha256:%s first), where the scheme wants the leaf alone", len(fps), abbreviate(fps[0], 12))
}

// encodeCert writes a certificate as the scheme carries it: what a caller
// forges and what a big certificate's header measures.
func encodeCert(enc contract.CertEncoding, id *pki.Identity) string {
	switch enc {
	case contract.URLPEMRawPlus:
		return strings.NewReplacer("%2B", "+", "%3D", "=", "%2F", "/").Replace(encodeCert(contract.URLPEM, id))
	case contract.Base64DERCert:
		return base64.StdEncoding.EncodeToString(id.Cert.Raw)
	case contract.RFC9440:
		return ":" + base64.StdEncoding.EncodeToString(id.Cert.Raw) + ":"
	}
	// Every reserved character percent-encoded, spaces as %20 (nginx's
	// $ssl_client_escaped_cert).
	return strings.ReplaceAll(url.QueryEscape(string(id.CertPEM())), "+", "%20")
}

// respell writes name the way spelled is written, so that a smuggled
// spelling of a dlb name becomes the same smuggled spelling of the
// scheme's name: a name the scheme shares is sent exactly as spelled;
// another gets spelled's separators ("-" or "_") in their order (the last
// one repeated) and its letter case when that is all lower or all upper.
func respell(spelled, name string) string {
	if foldName(spelled) == foldName(name) {
		return spelled
	}
	var seps []rune
	for _, r := range spelled {
		if r == '-' || r == '_' {
			seps = append(seps, r)
		}
	}
	if len(seps) > 0 {
		out := []rune(name)
		k := 0
		for i, r := range out {
			if r == '-' || r == '_' {
				out[i] = seps[min(k, len(seps)-1)]
				k++
			}
		}
		name = string(out)
	}
	switch {
	case spelled == strings.ToLower(spelled):
		name = strings.ToLower(name)
	case spelled == strings.ToUpper(spelled):
		name = strings.ToUpper(name)
	}
	return name
}

// schemeFacts reads every fact the scheme forwards out of the backend's
// headers, as tokens keyed by where the scheme puts them.
func schemeFacts(s contract.Scheme, h http.Header) map[string]string {
	out := map[string]string{}
	for _, f := range contract.Facts {
		p, ok := s.Place(f)
		if !ok {
			continue
		}
		v, problem, ok := placeValue(h, p)
		switch {
		case !ok:
		case problem != "":
			out[p.String()] = problem
		default:
			out[p.String()] = factToken(s, f, v)
		}
	}
	return out
}

// ForwardedIdentity checks that the backend's headers carry cert the way
// the scheme forwards it: the certificate itself and, where the scheme
// sends them, its subject, issuer and serial. It says what it compared,
// or what differs.
func ForwardedIdentity(s contract.Scheme, h http.Header, cert *x509.Certificate) (string, error) {
	got := schemeFacts(s, h)
	want := map[string]string{s.Cert.Place.String(): "certificate sha256:" + pki.Fingerprint(cert)}
	if s.Subject != nil {
		want[s.Subject.Place.String()] = certDN(cert.RawSubject)
	}
	if s.Issuer != nil {
		want[s.Issuer.Place.String()] = certDN(cert.RawIssuer)
	}
	if s.Serial != nil {
		want[s.Serial.Place.String()] = normalSerial(cert.SerialNumber.Text(16))
	}
	if s.Verify != nil {
		want[s.Verify.Header] = "SUCCESS"
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return "", fmt.Errorf("the backend's headers differ from scheme %s (-want +got):\n%s", s.Name, diff)
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Sprintf("scheme %s: %s as the partner's certificate says", s.Name, strings.Join(keys, ", ")), nil
}
