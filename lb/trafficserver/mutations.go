package trafficserver

import (
	"mtlsconform/contract"
	"mtlsconform/lb"
)

func mutations() lb.Mutations[files] {
	return lb.Mutations[files]{
		"optional-for-mandatory": {
			How:   "mtls.lua told the mode is optional: callers without a certificate pass marked NONE",
			Apply: lb.OnlyIn(contract.Mandatory, in("remap.config", lb.Replace("@pparam=mandatory", "@pparam=optional"))),
		},
		"verify-required": {
			How:   "sni.yaml verify_client STRICT, Traffic Server's own way: a caller without a certificate gets an alert",
			Apply: lb.OnlyIn(contract.Mandatory, in("sni.yaml", lb.Replace("verify_client: MODERATE", "verify_client: STRICT"))),
		},
		"no-cert-403": {
			How:   "the script answers 403",
			Apply: lb.OnlyIn(contract.Mandatory, in("mtls.lua", lb.Replace("ts.http.set_resp(400, PAGE)", "ts.http.set_resp(403, PAGE)"))),
		},
		"different-400-text": {
			How:   "the script's page says something else",
			Apply: lb.OnlyIn(contract.Mandatory, in("mtls.lua", lb.Replace("ts.http.set_resp(400, PAGE)", "ts.http.set_resp(400, 'client certificate missing')"))),
		},
		"pass-client-verify": {
			How: "the caller's X-SSL-Client-Verify is kept aside before the strip and put back after",
			Apply: lb.Chain(
				in("mtls.lua", lb.Replace("  local tls = ts.client_request.get_ssl_protocol() ~= '-'\n",
					"  local tls = ts.client_request.get_ssl_protocol() ~= '-'\n  local forged = h['"+contract.HeaderVerify+"']\n")),
				in("mtls.lua", lb.Replace("  h[CERT_HEADER] = pem\n  return TS_LUA_REMAP_NO_REMAP\n",
					"  h[CERT_HEADER] = pem\n  if forged then h['"+contract.HeaderVerify+"'] = forged end\n  return TS_LUA_REMAP_NO_REMAP\n")),
				in("mtls.lua", lb.Replace("    h['"+contract.HeaderVerify+"'] = 'NONE'\n",
					"    h['"+contract.HeaderVerify+"'] = forged or 'NONE'\n")),
			),
		},
		"no-dn-header": {
			Apply: in("mtls.lua", lb.Replace("  h['"+contract.HeaderDN+"'] = rfc2253(subject or '')\n", "")),
		},
		"no-serial-header": {
			Apply: in("mtls.lua", lb.Replace("  h['"+contract.HeaderSerial+"'] = serial or ''\n", "")),
		},
		"cert-not-encoded": {
			How:   "the PEM as sslheaders gives it, newlines as spaces",
			Apply: in("mtls.lua", lb.Replace("  h[CERT_HEADER] = pem\n", "  h[CERT_HEADER] = cert\n")),
		},
		"exact-names-only": {
			How:   "norm() folds letter case but not '_'",
			Apply: in("mtls.lua", lb.Replace("return (string.lower(name):gsub('_', '-'))", "return (string.lower(name))")),
		},
		"plain-port-proxies": {
			How: "the script lets plain-HTTP requests through untouched",
			Apply: in("mtls.lua", lb.Replace("  local h = ts.client_request.header\n",
				"  if ts.client_request.get_ssl_protocol() == '-' then return TS_LUA_REMAP_NO_REMAP end\n  local h = ts.client_request.header\n")),
		},
		"cert-header-cut-at-8k": {
			How:   "the script cuts the header, as a proxy hop with an 8 KiB header limit does",
			Apply: in("mtls.lua", lb.Replace("  h[CERT_HEADER] = pem\n", "  h[CERT_HEADER] = pem:sub(1, 8192)\n")),
		},
		"tls13-only": {
			How:   "proxy.config.ssl.TLSv1_2 0",
			Apply: in("records.config", lb.Replace("CONFIG proxy.config.ssl.TLSv1_2 INT 1", "CONFIG proxy.config.ssl.TLSv1_2 INT 0")),
		},
	}
}
