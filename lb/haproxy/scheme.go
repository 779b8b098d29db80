package haproxy

import (
	"fmt"
	"regexp"
	"strings"

	"mtlsconform/contract"
)

// haproxyHeaders is a header scheme as HAProxy renders it, from the
// scheme's properties (never its name), so a team's own scheme file
// renders too: the frontend's del-header patterns, and the partner API
// backend's lines after its refusals (the certificate encoded into a
// variable and the size guards, then the set-header rules).
type haproxyHeaders struct {
	strips []string
	guards []string
	sets   []string
}

// haproxyTooLargePage is nginx's page for oversized headers; the rule
// that answers it names the size acls (see haproxyGlobal): HAProxy would
// otherwise pass a header on empty (the encoding failed) or answer 500
// (no room).
const haproxyTooLargePage = `http-request return status 400 content-type "text/html" string "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>Request Header Or Cookie Too Large</center>\r\n</body>\r\n</html>\r\n"`

// haproxyTooLarge refuses a certificate whose headers would not fit, for
// each of the acls, when the headers would be sent.
func haproxyTooLarge(when string, acls []string) string {
	var conds []string
	for _, a := range acls {
		conds = append(conds, when+" !"+a)
	}
	return haproxyTooLargePage + " if " + strings.Join(conds, " || ")
}

// haproxyCertExpr is the sample expression that encodes the leaf for the
// scheme's certificate encoding (a base64 body; the armour is added in
// the header's value), and the value around it.
func haproxyCertExpr(enc contract.CertEncoding) (expr, before, after string) {
	const (
		pemBegin = "-----BEGIN%%20CERTIFICATE-----%%0A"
		pemEnd   = "-----END%%20CERTIFICATE-----%%0A"
	)
	switch enc {
	case contract.URLPEMRawPlus:
		// As haproxyEncodedCert, with + = / left raw (AWS ALB's "+=/ as
		// safe characters"): percent-decoding recovers the PEM.
		return `'ssl_c_der,base64,regsub("(.{1,64})","\1%0A",g)'`, pemBegin, pemEnd
	case contract.Base64DERCert:
		return "ssl_c_der,base64", "", ""
	case contract.RFC9440:
		// An RFC 8941 byte sequence: standard base64 with padding, in colons.
		return "ssl_c_der,base64", ":", ":"
	}
	return haproxyEncodedCert, pemBegin, pemEnd
}

// haproxyDN is the fetch of a DN (subject "s" or issuer "i") in the
// scheme's rendering, or why HAProxy has none.
func haproxyDN(which string, r contract.DNRendering) (string, error) {
	switch r {
	case contract.RFC2253:
		return "ssl_c_" + which + "_dn(,0,rfc2253)", nil
	case contract.LegacySlash:
		return "ssl_c_" + which + "_dn", nil
	}
	return "", contract.Unsupported("HAProxy 2.6 has no fetch for a DN as %s: ssl_c_s_dn and ssl_c_i_dn write OpenSSL's one-line form "+
		"or RFC 2253 (\"only rfc2253 or a blank value are currently supported as the format argument\"), and no fetch gives a DN's DER", r)
}

// haproxySerial is the fetch of the serial in the scheme's form, or why
// HAProxy has none.
func haproxySerial(f contract.SerialForm) (string, error) {
	switch f {
	case contract.SerialHex:
		return "ssl_c_serial,hex", nil
	case contract.SerialHexColons:
		return `ssl_c_serial,hex,regsub("(..)(?=.)","\1:",g)`, nil
	}
	return "", contract.Unsupported("HAProxy 2.6 has no converter that writes a serial in %s: ssl_c_serial is binary of up to 20 bytes "+
		"and HAProxy's integers are 64-bit; only a Lua converter could, and lua-load is a global setting that a slot of the shared balancer cannot carry", f)
}

// haproxyPlainValue is a verify value HAProxy's configuration takes as it
// is: no quoting, no log-format escape.
var haproxyPlainValue = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]+$`)

// haproxyLiteral is a verify value as a set-header argument: as it is
// when it needs nothing, otherwise double-quoted with HAProxy's escapes
// (\" \\ \$) and the log-format's %%. A header value cannot hold control
// characters, so those are refused.
func haproxyLiteral(what, v string) (string, error) {
	if haproxyPlainValue.MatchString(v) {
		return v, nil
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "", contract.Unsupported("the scheme's %s %q holds a control character, which no HTTP header value can carry", what, v)
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, `%`, `%%`).Replace(v) + `"`, nil
}

// haproxyLogFormat is a header value (a log-format string of our own
// making) as a set-header argument: a lone sample expression as it is,
// anything else single-quoted (the values hold no single quote).
var haproxyLoneExpr = regexp.MustCompile(`^%\[[A-Za-z0-9_(),.]*\]$`)

func haproxyLogFormat(v string) string {
	if haproxyLoneExpr.MatchString(v) {
		return v
	}
	return "'" + v + "'"
}

// haproxyStripNames are the headers a configuration strips, in order:
// the scheme's own and its Strip list, with the certificate header's
// name in the scheme before the team's rename (origCert), since a gateway
// configured for that one must not read a caller's copy either.
func haproxyStripNames(s contract.Scheme, origCert string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		if k := contract.FoldHeader(h); !seen[k] {
			seen[k] = true
			out = append(out, h)
		}
	}
	for _, h := range s.Stripped() {
		if s.Cert.Field == "" && h == s.Cert.Header && origCert != "" {
			add(origCert)
		}
		add(h)
	}
	return out
}

// haproxyStripPatterns are the del-header -m reg patterns for every
// spelling of each name. The X-SSL- family is stripped by prefix, as
// the reference always has (no caller may send any X-SSL- header); the
// certificate headers are whole names.
func haproxyStripPatterns(s contract.Scheme, origCert string) []string {
	var out []string
	prefixed := false
	for _, h := range haproxyStripNames(s, origCert) {
		isCert := s.Cert.Field == "" && (h == s.Cert.Header || h == origCert)
		if !isCert && strings.HasPrefix(contract.FoldHeader(h), "x-ssl-") {
			if !prefixed {
				prefixed = true
				out = append(out, haproxySpelled("X-SSL-", false))
			}
			continue
		}
		out = append(out, haproxySpelled(h, true))
	}
	return out
}

// haproxySchemeHeaders renders the scheme. With a verify header, the
// identity headers come whenever the caller presented a certificate;
// without one, only for a verified certificate, since their presence is
// then the verdict.
func haproxySchemeHeaders(s contract.Scheme, origCert string) (haproxyHeaders, error) {
	hs := haproxyHeaders{strips: haproxyStripPatterns(s, origCert)}
	when := "{ ssl_c_used }"
	if s.Verify == nil {
		when = "{ ssl_c_used } { ssl_c_verify 0 }"
	}

	// The values of each fact, as log-format text.
	value := map[contract.Fact]string{}
	acls := []string{"mtls_cert_fits"}
	expr, before, after := haproxyCertExpr(s.Cert.Encoding)
	guards := []string{
		"http-request set-var(txn.mtls_cert) " + expr + " if " + when,
		fmt.Sprintf("acl %-16s var(txn.mtls_cert),length le %d", "mtls_cert_fits", haproxyCertMax),
	}
	for _, h := range s.IdentityHeaders() {
		for _, ff := range h.Fields {
			f := ff.Fact
			switch f {
			case contract.FactSubject, contract.FactIssuer:
				which, r, acl := "s", s.Subject.Rendering, "mtls_dn_fits"
				if f == contract.FactIssuer {
					which, r, acl = "i", s.Issuer.Rendering, "mtls_issuer_fits"
				}
				fetch, err := haproxyDN(which, r)
				if err != nil {
					return hs, err
				}
				guards = append(guards, fmt.Sprintf("acl %-16s %s,length le %d", acl, fetch, haproxyDNMax))
				acls = append(acls, acl)
				value[f] = "%[" + fetch + "]"
			case contract.FactSerial:
				fetch, err := haproxySerial(s.Serial.Form)
				if err != nil {
					return hs, err
				}
				value[f] = "%[" + fetch + "]"
			default:
				value[f] = before + "%[var(txn.mtls_cert)]" + after
			}
		}
	}
	hs.guards = append(guards, haproxyTooLarge(when, acls))

	if v := s.Verify; v != nil {
		values := map[string]string{}
		width := 0
		for _, k := range []string{"success", "failed", "none"} {
			raw := map[string]string{"success": v.Success, "failed": v.Failed, "none": v.None}[k]
			q, err := haproxyLiteral("verify "+k+" value", raw)
			if err != nil {
				return hs, err
			}
			values[k] = q
			width = max(width, len(q))
		}
		// FailedPrefix: the value only has to start with Failed; it is
		// Failed itself.
		for _, l := range []struct{ value, cond string }{
			{values["none"], "!{ ssl_c_used }"},
			{values["success"], "{ ssl_c_used } { ssl_c_verify 0 }"},
			{values["failed"], "{ ssl_c_used } !{ ssl_c_verify 0 }"},
		} {
			hs.sets = append(hs.sets, fmt.Sprintf("http-request set-header %s %-*s if %s", v.Header, width, l.value, l.cond))
		}
	}
	for _, h := range s.IdentityHeaders() {
		text := value[h.Fields[0].Fact]
		if h.XFCC() {
			// One x-forwarded-client-cert element, its fields quoted as
			// Envoy writes them (an RFC 2253 DN already escapes a quote
			// as \").
			var fields []string
			for _, ff := range h.Fields {
				fields = append(fields, ff.Field+`="`+value[ff.Fact]+`"`)
			}
			text = strings.Join(fields, ";")
		}
		hs.sets = append(hs.sets, "http-request set-header "+h.Header+" "+haproxyLogFormat(text)+" if "+when)
	}
	return hs, nil
}
