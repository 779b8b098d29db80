package apache

import (
	"fmt"
	"slices"
	"strings"

	"mtlsconform/contract"
)

// Apache renders a header scheme from its properties, not its name, with
// mod_ssl's variables and mod_headers alone:
//   - DNs: SSL_CLIENT_S_DN and SSL_CLIENT_I_DN are RFC 2253; SSLOptions
//     +LegacyDNStringFormat turns both into OpenSSL's slash form. The option
//     is per directory and read for every DN of the request, so one request
//     cannot have the two DNs in different renderings.
//   - The serial: SSL_CLIENT_M_SERIAL is hex (i2a_ASN1_INTEGER, two digits a
//     byte); an edit* puts the colons between the pairs.
//   - The certificate: SSL_CLIENT_CERT is PEM. ap_expr's escape() URL-encodes
//     it but for + / =, which edit* encodes after it; %{VAR}s writes its
//     line breaks as spaces, so edit* strips the armour and the spaces to
//     leave the DER's base64.
//   - An x-forwarded-client-cert element is written by one ap_expr string
//     from SSL variables and, for a value that needs edits first, a
//     request header of our own that is removed right after.

// apacheVerifyComment is the dlb rendering's comment on the verify lines.
const apacheVerifyComment = `    # SSL_CLIENT_VERIFY is NONE, SUCCESS, GENEROUS or FAILED:<reason>;
    # the contract knows NONE, SUCCESS and plain FAILED (C10).
`

// apacheTempPrefix names the request headers that carry a value between
// its edits and the XFCC element it goes into.
const apacheTempPrefix = "X-Mtlsconform-Xfcc-"

// apacheFact is how mod_ssl gives a fact: a format string for a header of
// its own, an ap_expr string for a part of an XFCC element, and the
// edits that turn it into the scheme's rendering.
type apacheFact struct {
	format string
	expr   string
	// encode are the lines that finish the value in header h.
	encode func(h string) string
}

// apacheFactSource says how Apache writes a fact in the scheme's
// rendering, or why it cannot.
func apacheFactSource(s contract.Scheme, f contract.Fact) (apacheFact, error) {
	none := func(string) string { return "" }
	switch f {
	case contract.FactSubject, contract.FactIssuer:
		d, v := s.Subject, "SSL_CLIENT_S_DN"
		if f == contract.FactIssuer {
			d, v = s.Issuer, "SSL_CLIENT_I_DN"
		}
		if d.Rendering == contract.Base64DER {
			return apacheFact{}, contract.Unsupported("apache has no DN as base64 DER: mod_ssl's %s is RFC 2253 (or, with SSLOptions +LegacyDNStringFormat, "+
				"the slash form), and mod_headers' regex edits cannot cut a DN's DER out of the certificate", v)
		}
		return apacheFact{format: "%{" + v + "}s", expr: "%{" + v + "}", encode: none}, nil
	case contract.FactSerial:
		switch s.Serial.Form {
		case contract.SerialHex:
			return apacheFact{format: "%{SSL_CLIENT_M_SERIAL}s", expr: "%{SSL_CLIENT_M_SERIAL}", encode: none}, nil
		case contract.SerialHexColons:
			return apacheFact{format: "%{SSL_CLIENT_M_SERIAL}s", encode: func(h string) string {
				// Two hex digits a byte: a colon after every pair another
				// digit follows.
				return "    RequestHeader edit* " + h + ` "([0-9A-Fa-f]{2})(?=[0-9A-Fa-f])" "$1:"` + "\n"
			}}, nil
		}
		return apacheFact{}, contract.Unsupported("apache has no decimal serial: mod_ssl's SSL_CLIENT_M_SERIAL is hex, and neither mod_headers' regex edits " +
			"nor ap_expr can do the arithmetic to turn it into decimal")
	}
	escaped := "expr=%{escape:%{SSL_CLIENT_CERT}}"
	switch s.Cert.Encoding {
	case contract.URLPEM:
		return apacheFact{format: escaped, encode: apacheEncodeCert}, nil
	case contract.URLPEMRawPlus:
		// escape() leaves + / = raw, as the encoding wants.
		return apacheFact{format: escaped, expr: "%{escape:%{SSL_CLIENT_CERT}}", encode: none}, nil
	}
	base64 := func(h string) string {
		// %{VAR}s writes the PEM's line breaks as spaces.
		return "    RequestHeader edit* " + h + ` "-----(BEGIN|END) CERTIFICATE-----|\s" ""` + "\n"
	}
	if s.Cert.Encoding == contract.RFC9440 {
		return apacheFact{format: "%{SSL_CLIENT_CERT}s", encode: func(h string) string {
			return base64(h) + "    RequestHeader edit " + h + ` "^(.+)$" ":$1:"` + "\n"
		}}, nil
	}
	return apacheFact{format: "%{SSL_CLIENT_CERT}s", encode: base64}, nil
}

// apacheValue is a literal header value in a mod_headers format string:
// % doubled, quoted unless it is a plain word; what neither the
// configuration's quoting nor the format string can carry (quotes,
// backslashes, control characters) is refused.
func apacheValue(what, v string) (string, error) {
	for _, r := range v {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return "", contract.Unsupported("the scheme's %s %q holds characters Apache's configuration cannot carry literally in a mod_headers value", what, v)
		}
	}
	plain := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)) {
			plain = false
		}
	}
	v = strings.ReplaceAll(v, "%", "%%")
	if plain {
		return v, nil
	}
	return `"` + v + `"`, nil
}

// apacheDNOptions is the SSLOptions line the scheme's DN renderings need,
// or why one request cannot have them.
func apacheDNOptions(s contract.Scheme) (string, error) {
	var legacy, rfc []string
	for _, d := range []*contract.DNHeader{s.Subject, s.Issuer} {
		switch {
		case d == nil:
		case d.Rendering == contract.LegacySlash:
			legacy = append(legacy, d.Place.String())
		case d.Rendering == contract.RFC2253:
			rfc = append(rfc, d.Place.String())
		}
	}
	if len(legacy) == 0 {
		return "", nil
	}
	if len(rfc) > 0 {
		return "", contract.Unsupported("apache cannot write one DN in RFC 2253 form (%s) and the other in the legacy slash form (%s): "+
			"mod_ssl's SSLOptions +LegacyDNStringFormat is per directory and switches SSL_CLIENT_S_DN and SSL_CLIENT_I_DN together", rfc[0], legacy[0])
	}
	return `    # The scheme wants OpenSSL's legacy slash form (/C=../CN=..) for the
    # DNs: mod_ssl writes SSL_CLIENT_S_DN and SSL_CLIENT_I_DN so with this
    # option, which holds for every request of this host.
    SSLOptions +LegacyDNStringFormat
`, nil
}

// apacheHeaders renders the scheme's headers on the protected host. With
// a verify header, the identity headers come whenever the caller
// presented a certificate; without one, only for a verified certificate,
// since their presence is then the verdict.
func apacheHeaders(s contract.Scheme) (string, error) {
	var b strings.Builder
	opts, err := apacheDNOptions(s)
	if err != nil {
		return "", err
	}
	b.WriteString(opts)
	if v := s.Verify; v != nil {
		if v.Success == "SUCCESS" && v.Failed == "FAILED" && v.None == "NONE" {
			b.WriteString(apacheVerifyComment)
		} else {
			fmt.Fprintf(&b, "    # SSL_CLIENT_VERIFY is NONE, SUCCESS, GENEROUS or FAILED:<reason>;\n    # scheme %s calls them %q, %q and %q.\n", s.Name, v.None, v.Success, v.Failed)
		}
		values := map[string]string{}
		width := 0
		for k, raw := range map[string]string{"success": v.Success, "failed": v.Failed, "none": v.None} {
			if raw == "" {
				continue // no header at all: the stripped copy stays absent
			}
			q, err := apacheValue("verify "+k+" value", raw)
			if err != nil {
				return "", err
			}
			values[k] = q
			width = max(width, len(q))
		}
		for _, l := range []struct{ k, cond string }{
			{"none", "%{SSL_CLIENT_VERIFY} == 'NONE'"},
			{"success", "%{SSL_CLIENT_VERIFY} == 'SUCCESS'"},
			{"failed", "! %{SSL_CLIENT_VERIFY} in {'NONE', 'SUCCESS'}"},
		} {
			if q, ok := values[l.k]; ok {
				fmt.Fprintf(&b, "    RequestHeader set %s %-*s \"expr=%s\"\n", v.Header, width, q, l.cond)
			}
		}
		b.WriteString("    # %{VAR}s sends \"(null)\" for an absent value: the conditions keep the\n    # headers away when no certificate was sent.\n")
	} else {
		fmt.Fprintf(&b, "    # Scheme %s sends no verification result: its headers are there\n", s.Name)
		b.WriteString("    # only for a verified certificate (mod_ssl's SUCCESS), their presence\n    # is the verdict.\n")
	}
	when := `"expr=-n %{SSL_CLIENT_CERT}"`
	if s.Verify == nil {
		when = `"expr=%{SSL_CLIENT_VERIFY} == 'SUCCESS'"`
	}

	type part struct {
		field string
		fact  apacheFact
	}
	for _, h := range s.IdentityHeaders() {
		header := h.Header
		var ps []part
		for _, ff := range h.Fields {
			src, err := apacheFactSource(s, ff.Fact)
			if err != nil {
				return "", err
			}
			ps = append(ps, part{ff.Field, src})
		}
		// Envoy's order of the fields: Hash, Cert, Chain, Subject, URI, DNS.
		slices.SortStableFunc(ps, func(a, b part) int { return apacheXFCCRank(a.field) - apacheXFCCRank(b.field) })
		if ps[0].field == "" {
			fmt.Fprintf(&b, "    RequestHeader set %s %q %s\n", header, ps[0].fact.format, when)
			b.WriteString(ps[0].fact.encode(header))
			continue
		}
		// An x-forwarded-client-cert element, its fields quoted as Envoy
		// writes them (mod_ssl's RFC 2253 DN already escapes a quote as
		// \"). A value that needs edits is made in a header of its own
		// first, removed once the element is written.
		var fields, temps []string
		for _, p := range ps {
			expr := p.fact.expr
			if expr == "" {
				tmp := apacheTempPrefix + p.field
				temps = append(temps, tmp)
				fmt.Fprintf(&b, "    RequestHeader set %s %q %s\n", tmp, p.fact.format, when)
				b.WriteString(p.fact.encode(tmp))
				expr = "%{req_novary:" + tmp + "}"
			}
			fields = append(fields, p.field+`=\"`+expr+`\"`)
		}
		fmt.Fprintf(&b, "    RequestHeader set %s \"expr=%s\" %s\n", header, strings.Join(fields, ";"), when)
		for _, tmp := range temps {
			b.WriteString("    RequestHeader unset " + tmp + "\n")
		}
	}
	return b.String(), nil
}

// apacheXFCCRank is a field's place in Envoy's order; unknown fields come
// last.
func apacheXFCCRank(field string) int {
	for i, f := range []string{"By", "Hash", "Cert", "Chain", "Subject", "URI", "DNS"} {
		if strings.EqualFold(f, field) {
			return i
		}
	}
	return 100
}

// apacheStripped names the headers whose caller-sent copies are removed:
// the scheme's (its own and its Strip list), and the dlb's certificate
// header too, so that a gateway still configured for it never reads a
// caller's copy.
func apacheStripped(s contract.Scheme) []string {
	names := s.Stripped()
	for _, n := range names {
		if contract.FoldHeader(n) == contract.FoldHeader(contract.DefaultCertHeader) {
			return names
		}
	}
	return append(names, contract.DefaultCertHeader)
}
