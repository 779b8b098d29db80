package steps

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Distinguished names reach the backend as the balancer renders them. The
// contract's header set speaks RFC 2253 (CN first, comma-separated:
// nginx's $ssl_client_s_dn, HAProxy's rfc2253, Apache, Caddy): within that
// family, spaces after the separators, attribute names in any case or as
// OIDs, and escaping or quoting are the same DN, so both sides are brought
// to one canonical form before they are compared. Another family is not
// the same DN to a backend: OpenSSL's legacy "/C=../O=../CN=.." form (root
// first, nginx's $ssl_client_s_dn_legacy) breaks a backend that parses
// "CN=..,O=..", and fails the comparison naming the form it came in.

// attributeNames maps every spelling of an attribute type to one name.
var attributeNames = map[string]string{
	"cn": "CN", "2.5.4.3": "CN", "commonname": "CN",
	"o": "O", "2.5.4.10": "O", "organizationname": "O",
	"ou": "OU", "2.5.4.11": "OU", "organizationalunitname": "OU",
	"c": "C", "2.5.4.6": "C", "countryname": "C",
	"l": "L", "2.5.4.7": "L", "localityname": "L",
	"st": "ST", "s": "ST", "2.5.4.8": "ST", "stateorprovincename": "ST",
	"street": "STREET", "2.5.4.9": "STREET", "streetaddress": "STREET",
	"serialnumber": "serialNumber", "2.5.4.5": "serialNumber",
	"postalcode": "postalCode", "2.5.4.17": "postalCode",
	"dc": "DC", "0.9.2342.19200300.100.1.25": "DC", "domaincomponent": "DC",
	"uid": "UID", "0.9.2342.19200300.100.1.1": "UID", "userid": "UID",
	"emailaddress": "emailAddress", "email": "emailAddress", "e": "emailAddress", "1.2.840.113549.1.9.1": "emailAddress",
	"title": "title", "2.5.4.12": "title",
	"givenname": "GN", "gn": "GN", "2.5.4.42": "GN",
	"surname": "SN", "sn": "SN", "2.5.4.4": "SN",
	"organizationidentifier": "organizationIdentifier", "2.5.4.97": "organizationIdentifier",
}

func attributeName(t string) string {
	t = strings.TrimSpace(t)
	if n, ok := attributeNames[strings.ToLower(t)]; ok {
		return n
	}
	return strings.TrimPrefix(strings.ToLower(t), "oid.")
}

// canonicalDN renders RDNs, most specific first, as "type=value" joined by
// commas; several values of one RDN are sorted and joined by "+". Special
// characters in values are escaped so the form is unambiguous.
func canonicalDN(rdns [][]string) string {
	parts := make([]string, len(rdns))
	for i, rdn := range rdns {
		r := append([]string(nil), rdn...)
		sort.Strings(r)
		parts[i] = strings.Join(r, "+")
	}
	return strings.Join(parts, ",")
}

func atv(name, value string) string {
	esc := strings.NewReplacer(`\`, `\\`, `,`, `\,`, `+`, `\+`, `=`, `\=`).Replace(value)
	return attributeName(name) + "=" + esc
}

// certDN is the canonical form of a certificate's subject or issuer, read
// from its DER so no library's rendering stands between.
func certDN(raw []byte) string {
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(raw, &seq); err != nil {
		return "unparseable DN"
	}
	rdns := make([][]string, 0, len(seq))
	for i := len(seq) - 1; i >= 0; i-- {
		var rdn []string
		for _, a := range seq[i] {
			rdn = append(rdn, atv(a.Type.String(), attributeValue(a.Value)))
		}
		rdns = append(rdns, rdn)
	}
	return canonicalDN(rdns)
}

func attributeValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return "#" + hex.EncodeToString(x)
	}
	return fmt.Sprint(v)
}

// normalDN reads a DN as a balancer forwarded it and returns its canonical
// form; what cannot be read is returned as it came.
func normalDN(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	var rdns [][]string
	if strings.HasPrefix(s, "/") {
		// OpenSSL's one-line form, root first; values are not escaped.
		fields := strings.Split(s[1:], "/")
		for i := len(fields) - 1; i >= 0; i-- {
			name, value, ok := strings.Cut(fields[i], "=")
			if !ok {
				// A "/" inside a value: join it back to the previous field.
				if i > 0 {
					fields[i-1] += "/" + fields[i]
					continue
				}
				return s
			}
			rdns = append(rdns, []string{atv(name, strings.TrimSpace(value))})
		}
		return canonicalDN(rdns)
	}
	for _, rdn := range splitEscaped(s, ',', ';') {
		var vals []string
		for _, a := range splitEscaped(rdn, '+') {
			name, value, ok := cutEscaped(a, '=')
			if !ok {
				return s
			}
			vals = append(vals, atv(name, unescapeDNValue(strings.TrimSpace(value))))
		}
		rdns = append(rdns, vals)
	}
	return canonicalDN(rdns)
}

// headerDN is a DN header's value as compared with the contract's: its
// canonical form when it is RFC 2253, otherwise a text that says which
// rendering it came in, which no certificate's DN equals.
func headerDN(s string) string {
	if strings.HasPrefix(strings.TrimSpace(s), "/") {
		return fmt.Sprintf("%q in OpenSSL's legacy slash form (root first), where the contract's headers carry RFC 2253 (CN first, comma-separated)", s)
	}
	return normalDN(s)
}

// splitEscaped splits s at unescaped separators (RFC 4514 escapes with a
// backslash; quoted values of RFC 1779 are honoured too).
func splitEscaped(s string, seps ...byte) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
			continue
		case c == '"':
			quoted = !quoted
		case !quoted && strings.IndexByte(string(seps), c) >= 0:
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(out, cur.String())
}

func cutEscaped(s string, sep byte) (string, string, bool) {
	parts := splitEscaped(s, sep)
	if len(parts) < 2 {
		return s, "", false
	}
	return parts[0], strings.Join(parts[1:], string(sep)), true
}

// unescapeDNValue undoes RFC 4514 escapes (\, \+ \\ and \XX hex pairs) and
// RFC 1779 quotes.
func unescapeDNValue(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	var b []byte
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			if i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
				x, _ := hex.DecodeString(v[i+1 : i+3])
				b = append(b, x...)
				i += 2
				continue
			}
			b = append(b, v[i+1])
			i++
			continue
		}
		b = append(b, v[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}
