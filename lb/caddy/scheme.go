package caddy

import (
	"strings"

	"mtlsconform/contract"
)

// caddyHeaderSet is a header scheme as Caddy renders it, from the scheme's
// properties (not its name), so a team's own scheme file renders too.
//
// Caddy has no verification-status placeholder, and verify_if_given
// refuses, in the handshake, every certificate that does not verify: a
// request whose connection presented a certificate (the with-certificate
// route) is a verified one. So the route's headers are the scheme's
// answer for SUCCESS, whether or not the scheme has a verify header; a
// caller without a certificate gets the verify header's NONE value in
// Optional mode, and nothing else (the identity placeholders would be left
// as literal text there: they are only set on the with-certificate route).
type caddyHeaderSet struct {
	// prepare is a headers handler run before the proxy on the
	// with-certificate route: it builds, in request headers of its own,
	// the values an XFCC element quotes that need replacements (which
	// apply to a whole header's value, not to one field of it). nil when
	// none is needed.
	prepare *caddyHeaderOps
	// cert are the proxy's header operations on the with-certificate route.
	cert *caddyHeaderOps
	// none is what a caller without a certificate is proxied with in
	// Optional mode; nil is no header at all.
	none map[string][]string
	// strip are the names the strip route deletes on every request.
	strip []string
}

// caddyValue is a fact as Caddy writes it: a header value with
// placeholders, then the replacements that turn it into the scheme's
// encoding.
type caddyValue struct {
	set     string
	replace []caddyReplacement
}

// caddyXFCCTemp is the prefix of the request headers prepare builds an
// XFCC field's value in; the proxy reads them by placeholder and deletes
// them from what it sends.
const caddyXFCCTemp = "Mtlsconform-Xfcc-"

// caddyScheme renders the scheme; what Caddy 2.6 cannot write is
// contract.Unsupported, with the reason.
func caddyScheme(s contract.Scheme) (caddyHeaderSet, error) {
	hs := caddyHeaderSet{cert: &caddyHeaderOps{Set: map[string][]string{}}, strip: caddySchemeStripped(s)}
	if v := s.Verify; v != nil {
		for what, value := range map[string]string{"success": v.Success, "none": v.None} {
			if err := caddyLiteral("verify "+what+" value", value); err != nil {
				return hs, err
			}
		}
		// FAILED never reaches a route: verify_if_given refuses the
		// certificate in the handshake (the profile's C10/C11 deviations).
		hs.cert.Set[v.Header] = []string{v.Success}
		if v.None != "" {
			hs.none = map[string][]string{v.Header: {v.None}}
		}
	}
	for _, h := range s.IdentityHeaders() {
		var parts []string
		for _, ff := range h.Fields {
			val, err := caddyFact(s, ff.Fact)
			if err != nil {
				return hs, err
			}
			if !h.XFCC() {
				hs.cert.Set[h.Header] = []string{val.set}
				if len(val.replace) > 0 {
					if hs.cert.Replace == nil {
						hs.cert.Replace = map[string][]caddyReplacement{}
					}
					hs.cert.Replace[h.Header] = val.replace
				}
				continue
			}
			// An x-forwarded-client-cert element: one, its fields
			// double-quoted as Envoy writes them (Go's DN strings escape a
			// quote as \").
			value := val.set
			if len(val.replace) > 0 {
				temp := caddyXFCCTemp + ff.Field
				if hs.prepare == nil {
					hs.prepare = &caddyHeaderOps{Set: map[string][]string{}, Replace: map[string][]caddyReplacement{}}
				}
				hs.prepare.Set[temp] = []string{val.set}
				hs.prepare.Replace[temp] = val.replace
				hs.cert.Delete = append(hs.cert.Delete, temp)
				value = "{http.request.header." + temp + "}"
			}
			parts = append(parts, ff.Field+`="`+value+`"`)
		}
		if h.XFCC() {
			hs.cert.Set[h.Header] = []string{strings.Join(parts, ";")}
		}
	}
	return hs, nil
}

// caddyFact is the placeholder, and the replacements, that write a fact of
// the presented leaf as the scheme wants it.
func caddyFact(s contract.Scheme, f contract.Fact) (caddyValue, error) {
	switch f {
	case contract.FactSubject, contract.FactIssuer:
		d, ph, what := s.Subject, caddyCertSubject, "subject"
		if f == contract.FactIssuer {
			d, ph, what = s.Issuer, caddyCertIssuer, "issuer"
		}
		if d.Rendering == contract.RFC2253 {
			return caddyValue{set: ph}, nil
		}
		return caddyValue{}, contract.Unsupported("Caddy 2.6's %s placeholder is Go's RFC 2253-style string, and it has none for the %s DN as %s: "+
			"its header replacements cannot reverse an RDN sequence of any length (legacy slash form) nor re-encode a DN as DER",
			what, what, d.Rendering)
	case contract.FactSerial:
		switch s.Serial.Form {
		case contract.SerialHex:
			return caddyValue{set: caddyCertDER, replace: caddySerialFromDER()}, nil
		case contract.SerialHexColons:
			return caddyValue{set: caddyCertDER, replace: append(caddySerialFromDER(),
				caddyReplacement{SearchRegexp: `..`, Replace: `$0:`},
				caddyReplacement{SearchRegexp: `:$`, Replace: ``},
			)}, nil
		}
		// Caddy's own serial placeholder is decimal.
		return caddyValue{set: caddyCertSerial}, nil
	}
	switch s.Cert.Encoding {
	case contract.URLPEM:
		return caddyValue{set: caddyCertDER, replace: caddyEscapedPEMFromDER()}, nil
	case contract.URLPEMRawPlus:
		return caddyValue{set: caddyCertDER, replace: caddyPEMFromDER(false)}, nil
	case contract.RFC9440:
		return caddyValue{set: ":" + caddyCertDER + ":"}, nil
	}
	return caddyValue{set: caddyCertDER}, nil
}

// caddyLiteral refuses a literal value Caddy's configuration cannot carry
// as it is: braces are its placeholders' syntax (and a backslash its
// escape for them), control characters no header value holds.
func caddyLiteral(what, v string) error {
	if strings.ContainsAny(v, `{}\`) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return contract.Unsupported("the scheme's %s %q holds characters Caddy's placeholder syntax or a header value cannot carry literally", what, v)
	}
	return nil
}

// caddySchemeStripped are the names the strip route deletes: every
// header the scheme sets or strips, in every spelling. Caddy 2.6 compares
// names case-insensitively, an exact name through Go's canonical form
// (which keeps "_"), a name ending in "*" as a prefix. Where the scheme
// has X-SSL-* headers, every X-SSL-* name goes, under all four spellings
// of that prefix, not just the ones the balancer sets: anything under it
// looks like the balancer's word. The certificate header goes in every
// spelling wherever it is.
func caddySchemeStripped(s contract.Scheme) []string {
	const prefix = "x-ssl-"
	stripped := s.Stripped()
	var out []string
	for _, h := range stripped {
		if strings.HasPrefix(contract.FoldHeader(h), prefix) {
			for _, p := range contract.Spellings("X-SSL-") {
				out = append(out, p+"*")
			}
			break
		}
	}
	for _, h := range stripped {
		if s.Cert.Field == "" && h == s.Cert.Header || !strings.HasPrefix(contract.FoldHeader(h), prefix) {
			out = append(out, contract.Spellings(h)...)
		}
	}
	return out
}
