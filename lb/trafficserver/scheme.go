package trafficserver

import (
	"strings"

	"mtlsconform/contract"
)

// scriptScheme is a header scheme as mtls.lua renders it, from the
// scheme's properties (never its name): the Lua table of every name the
// script strips, the lines for a caller without a certificate, the lines
// for a verified one, and the helpers those lines call. The certificate's
// own header is the script's CERT_HEADER parameter (remap.config).
type scriptScheme struct {
	StripTable string
	NoneLines  string
	SetLines   string
	Helpers    string
}

// Lua helpers beyond the dlb scheme's (rfc2253 and escaped), each put in
// the script only when the scheme needs it, in this order.
const (
	helperBody = `-- body is the base64 of the certificate's DER: the PEM sslheaders gives
-- without its armour and without the spaces that stand for its newlines.
local function body(spaced)
  local b = spaced:match('^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-%s*(.-)%s*%-%-%-%-%-END CERTIFICATE%-%-%-%-%-%s*$')
  return (string.gsub(b or '', '%s', ''))
end

`
	helperBase64 = `local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

-- unbase64 decodes standard base64 (padding ignored).
local function unbase64(s)
  local out, acc, bits = {}, 0, 0
  for ch in s:gmatch('[^=]') do
    acc, bits = acc * 64 + (B64:find(ch, 1, true) - 1), bits + 6
    if bits >= 8 then
      bits = bits - 8
      local byte = math.floor(acc / 2 ^ bits)
      table.insert(out, string.char(byte))
      acc = acc - byte * 2 ^ bits
    end
  end
  return table.concat(out)
end

-- base64 encodes bytes as standard base64 with padding, on one line.
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    for k = 3, 0, -1 do
      local d = math.floor(v / 64 ^ k) % 64
      table.insert(out, B64:sub(d + 1, d + 1))
    end
    if not c then out[#out] = '=' end
    if not b then out[#out - 1] = '=' end
  end
  return table.concat(out)
end

-- tlv reads the DER element at i: its tag, where its content starts and
-- where it ends.
local function tlv(s, i)
  local tag, len, start = s:byte(i), s:byte(i + 1), i + 2
  if len >= 128 then
    local n = len - 128
    len = 0
    for k = 0, n - 1 do len = len * 256 + s:byte(start + k) end
    start = start + n
  end
  return tag, start, start + len - 1
end

-- name64 is the DER of the certificate's issuer or subject Name, in
-- base64: the fourth or sixth field of tbsCertificate after the version.
local function name64(spaced, which)
  local der = unbase64(body(spaced))
  local _, cert = tlv(der, 1)
  local _, i = tlv(der, cert)
  if der:byte(i) == 0xA0 then
    local _, _, e = tlv(der, i)
    i = e + 1
  end
  local fields = {}
  for k = 1, 5 do
    local _, _, e = tlv(der, i)
    fields[k], i = der:sub(i, e), e + 1
  end
  return base64(fields[which == 'issuer' and 3 or 5])
end

`
	helperLegacy = `-- legacy turns OpenSSL's one-line DN (read by rdns) into
-- OpenSSL's legacy slash form, X509_NAME_oneline's and nginx's
-- $ssl_client_s_dn_legacy: root first, '/' before each RDN and '+'
-- between the values of one; in a value / and + get a backslash (OpenSSL
-- 3.0) and bytes outside ' '..'~' are written \\xXX.
local function legacy(oneline)
  if oneline == '' then return '' end
  local out = {}
  for _, rdn in ipairs(rdns(oneline)) do
    for k, a in ipairs(rdn) do
      local v = a[2]:gsub('[/+]', '\\%0'):gsub('[^ -~]', function(b) return string.format('\\x%02X', b:byte()) end)
      table.insert(out, (k == 1 and '/' or '+') .. a[1] .. '=' .. v)
    end
  end
  return table.concat(out)
end

`
	helperColons = `-- colons writes sslheaders' hex serial as colon-separated pairs.
local function colons(hex)
  if #hex % 2 == 1 then hex = '0' .. hex end
  return (hex:gsub('(%x%x)', '%1:'):sub(1, -2))
end

`
	helperDecimal = `-- decimal writes sslheaders' hex serial in decimal.
local function decimal(hex)
  if hex == '' then return '' end
  local digits = {0} -- base 10^7, least significant first
  for ch in hex:gmatch('%x') do
    local carry = tonumber(ch, 16)
    for k = 1, #digits do
      local v = digits[k] * 16 + carry
      digits[k], carry = v % 10000000, math.floor(v / 10000000)
    end
    if carry > 0 then table.insert(digits, carry) end
  end
  local out = {tostring(digits[#digits])}
  for k = #digits - 1, 1, -1 do table.insert(out, string.format('%07d', digits[k])) end
  return table.concat(out)
end

`
	helperRawPlus = `-- rawPlus is the escaped PEM with + = / left raw (AWS ALB's encoding).
local function rawPlus(pem)
  return (pem:gsub('%%2B', '+'):gsub('%%3D', '='):gsub('%%2F', '/'))
end

`
	helperXFCCQuote = `-- xfccQuote escapes " and \\ for a double-quoted XFCC value.
local function xfccQuote(v)
  return (v:gsub('["\\]', '\\%0'))
end

`
)

// helperOrder is the order helpers appear in, dependencies first.
var helperOrder = []string{helperBody, helperBase64, helperLegacy, helperColons, helperDecimal, helperRawPlus, helperXFCCQuote}

// luaString quotes v as a Lua string literal; a header value cannot carry
// control characters (a CR or LF would split the request).
func luaString(what, v string) (string, error) {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", contract.Unsupported("the scheme's %s %q holds a control character, which no HTTP header value Traffic Server sends can carry", what, v)
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String(), nil
}

// factExpr is the Lua expression for a fact's value as the scheme writes
// it, the helpers it needs, and whether it may hold " or \ unescaped.
func factExpr(s contract.Scheme, f contract.Fact) (expr string, helpers []string, raw bool) {
	switch f {
	case contract.FactSubject, contract.FactIssuer:
		d, v := s.Subject, "subject"
		if f == contract.FactIssuer {
			d, v = s.Issuer, "issuer"
		}
		switch d.Rendering {
		case contract.LegacySlash:
			return "legacy(" + v + " or '')", []string{helperLegacy}, true
		case contract.Base64DER:
			return "name64(cert, '" + v + "')", []string{helperBody, helperBase64}, false
		}
		return "rfc2253(" + v + " or '')", nil, false
	case contract.FactSerial:
		switch s.Serial.Form {
		case contract.SerialHexColons:
			return "colons(serial or '')", []string{helperColons}, false
		case contract.SerialDecimal:
			return "decimal(serial or '')", []string{helperDecimal}, false
		}
		return "serial or ''", nil, false
	}
	switch s.Cert.Encoding {
	case contract.URLPEMRawPlus:
		return "rawPlus(pem)", []string{helperRawPlus}, false
	case contract.Base64DERCert:
		return "body(cert)", []string{helperBody}, false
	case contract.RFC9440:
		return "':' .. body(cert) .. ':'", []string{helperBody}, false
	}
	return "pem", nil, false
}

// renderScheme renders the scheme for mtls.lua. Traffic Server aborts the
// handshake of a certificate that fails verification, so every
// certificate the script sees is verified: the identity headers are set
// for it whether or not the scheme has a verify header, and a scheme's
// failed value is never sent.
func renderScheme(s contract.Scheme) (scriptScheme, error) {
	var ss scriptScheme
	// The script's name for a header: its certificate header is the
	// CERT_HEADER parameter.
	name := func(h string) string {
		if contract.FoldHeader(h) == contract.FoldHeader(s.Cert.Header) {
			return "CERT_HEADER"
		}
		return "'" + h + "'"
	}
	var strip []string
	for _, h := range s.Stripped() {
		strip = append(strip, name(h))
	}
	ss.StripTable = "{" + strings.Join(strip, ", ")

	need := map[string]bool{}
	if v := s.Verify; v != nil {
		success, err := luaString("verify success value", v.Success)
		if err != nil {
			return ss, err
		}
		ss.SetLines += "  h[" + name(v.Header) + "] = " + success + "\n"
		if v.None != "" {
			none, err := luaString("verify none value", v.None)
			if err != nil {
				return ss, err
			}
			ss.NoneLines = "    h[" + name(v.Header) + "] = " + none + "\n"
		}
	}
	type part struct {
		field, expr string
		raw         bool
	}
	for _, h := range s.IdentityHeaders() {
		header := h.Header
		var ps []part
		for _, ff := range h.Fields {
			expr, helpers, raw := factExpr(s, ff.Fact)
			for _, hp := range helpers {
				need[hp] = true
			}
			ps = append(ps, part{ff.Field, expr, raw})
		}
		value := ps[0].expr
		if h.XFCC() {
			// One x-forwarded-client-cert element, every field
			// double-quoted as Envoy writes Cert, Chain and Subject (an
			// RFC 2253 DN already escapes " and \; the other renderings
			// but the legacy DN hold neither).
			var pieces []string
			lit := ""
			for _, p := range ps {
				expr := p.expr
				if p.raw {
					expr, need[helperXFCCQuote] = "xfccQuote("+expr+")", true
				}
				pieces = append(pieces, "'"+lit+p.field+`="'`, expr)
				lit = `";`
			}
			value = strings.Join(append(pieces, `'"'`), " .. ")
		}
		ss.SetLines += "  h[" + name(header) + "] = " + value + "\n"
	}
	for _, h := range helperOrder {
		if need[h] {
			ss.Helpers += h
		}
	}
	return ss, nil
}
