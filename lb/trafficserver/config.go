package trafficserver

import (
	"text/template"
)

// templates are the files under lb.ConfDir, each a template of the
// configuration (the credential and the truststore are added as they
// are).
var templates = map[string]*template.Template{
	// runroot.yaml points the configuration folder at lb.ConfDir and the
	// state Traffic Server writes at a folder the image has (the
	// maintainer scripts that make Debian's /run/trafficserver never ran).
	"runroot.yaml": template.Must(template.New("runroot.yaml").Parse(`# Rendered by mtlsconform: where Traffic Server finds its files.
prefix: /usr
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: {{.Dir}}
datadir: /usr/share/trafficserver
includedir: /usr/include
libdir: /usr/lib/trafficserver
libexecdir: /usr/lib/trafficserver/modules
localstatedir: /var/cache/trafficserver
runtimedir: /var/cache/trafficserver
logdir: /var/log/trafficserver
cachedir: /var/cache/trafficserver
`)),
	// records.config: a reverse proxy without cache, TLS on the API's port
	// and plain HTTP beside it, both TLS versions said out loud (C22),
	// every diagnostic on stderr. One network thread, no accept thread of
	// its own, one task thread and no RAM cache: a process per
	// configuration (lb.Processes) otherwise started a thread pool sized for
	// the machine each (a Traffic Server run: 6.0-6.7 → 5.7-6.0 CPU-seconds,
	// interleaved, same verdicts). The backend is named by its address (the
	// harness puts it in) or through the run network's DNS: Traffic Server
	// reads /etc/hosts only when told to, and then about a second after it
	// says it is initialized (every request until then: 500 "Unknown
	// Host", measured). The client CA is deliberately not set
	// here, only per host in sni.yaml: with proxy.config.ssl.CA.cert.filename
	// set, a truststore that cannot be read falls back to the copy read at
	// start (measured: fail open); without it, to nothing (fail closed).
	"records.config": template.Must(template.New("records.config").Parse(`# Rendered by mtlsconform: Apache Traffic Server 9.2 as the reference mTLS load balancer ({{.Mode}} mode).
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.http.server_ports STRING {{.Port}}:ssl {{.PlainPort}}
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.url_remap.remap_required INT 1
CONFIG proxy.config.http.cache.http INT 0
CONFIG proxy.config.log.logging_enabled INT 0
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT 1
CONFIG proxy.config.accept_threads INT 0
CONFIG proxy.config.task_threads INT 1
CONFIG proxy.config.cache.ram_cache.size INT 0
CONFIG proxy.config.ssl.TLSv1_2 INT 1
CONFIG proxy.config.ssl.TLSv1_3 INT 1
CONFIG proxy.config.ssl.server.cert.path STRING {{.Dir}}
CONFIG proxy.config.ssl.server.private_key.path STRING {{.Dir}}
CONFIG proxy.config.diags.output.diag STRING E
CONFIG proxy.config.diags.output.debug STRING E
CONFIG proxy.config.diags.output.status STRING E
CONFIG proxy.config.diags.output.note STRING E
CONFIG proxy.config.diags.output.warning STRING E
CONFIG proxy.config.diags.output.error STRING E
CONFIG proxy.config.diags.output.fatal STRING E
CONFIG proxy.config.diags.output.alert STRING E
CONFIG proxy.config.diags.output.emergency STRING E
`)),
	"ssl_multicert.config": template.Must(template.New("ssl_multicert.config").Parse(`# Rendered by mtlsconform: the server certificate, its chain and key.
dest_ip=* ssl_cert_name=server-chain.pem ssl_key_name=server.key
`)),
	// sni.yaml: the public host asks for no certificate; every other name,
	// and a handshake without SNI, asks for one and verifies it against the
	// truststore (MODERATE: a caller without one still gets in, for the
	// 400 page or NONE). Traffic Server answers 403 to a request whose Host
	// is not the SNI its connection chose (host_sni_policy 2, its default).
	"sni.yaml": template.Must(template.New("sni.yaml").Parse(`# Rendered by mtlsconform: which hosts ask for client certificates.
sni:
- fqdn: {{.PublicHost}}
  verify_client: NONE
- fqdn: '*'
  verify_client: MODERATE
  verify_client_ca_certs: {{.Dir}}/truststore.pem
`)),
	"ip_allow.yaml": template.Must(template.New("ip_allow.yaml").Parse(`# Rendered by mtlsconform: every caller may connect.
ip_allow:
- apply: in
  ip_addrs: 0/0
  action: allow
- apply: in
  ip_addrs: ::/0
  action: allow
`)),
	// plugin.config: sslheaders puts the verified certificate, its subject,
	// issuer and serial into internal headers of the caller's request
	// before remap, and takes them off again before the request leaves.
	"plugin.config": template.Must(template.New("plugin.config").Parse(`# Rendered by mtlsconform: the client certificate for mtls.lua.
sslheaders.so --attach=client ` + internalCert + `=client.certificate ` + internalSubject + `=client.subject ` + internalIssuer + `=client.issuer ` + internalSerial + `=client.serial
`)),
	"remap.config": template.Must(template.New("remap.config").Parse(`# Rendered by mtlsconform: every request to the backend, through mtls.lua.
map / http://{{.Backend}}/ @plugin=tslua.so @pparam=--states=4 @pparam={{.Dir}}/mtls.lua @pparam={{.Mode}} @pparam={{.CertHeader}} @pparam={{.PublicHost}}
`)),
	"storage.config": template.Must(template.New("storage.config").Parse("# Rendered by mtlsconform: no cache.\n")),
	"mtls.lua":       template.Must(template.New("mtls.lua").Parse(script)),
}

// The internal headers sslheaders fills for mtls.lua.
const (
	internalCert    = "X-Mtlsconform-Internal-Cert"
	internalSubject = "X-Mtlsconform-Internal-Subject"
	internalIssuer  = "X-Mtlsconform-Internal-Issuer"
	internalSerial  = "X-Mtlsconform-Internal-Serial"
)

// page is Mandatory mode's answer to a caller without a certificate,
// nginx's page word for word.
const page = `<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n` +
	`<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n` +
	`<center>No required SSL certificate was sent</center>\r\n</body>\r\n</html>\r\n`

// script is the remap script. A certificate that fails verification never
// reaches it (the handshake was aborted), so a certificate present is a
// verified one (SUCCESS) and none is NONE. The strip list, the lines for a
// caller without a certificate and those for a verified one, and the Lua
// helpers they call come from the header scheme (scheme.go).
var script = `-- Rendered by mtlsconform: the contract's headers and Mandatory mode's 400 page.
-- Parameters: the mode, the certificate header's name, the public host.
local INTERNAL = {'` + internalCert + `', '` + internalSubject + `', '` + internalIssuer + `', '` + internalSerial + `'}

local PAGE = '` + page + `'

function __init__(argtb)
  MODE, CERT_HEADER, PUBLIC = argtb[1], argtb[2], argtb[3]
  -- Every name the backend may only ever get from here, as norm() reads it.
  STRIP = {}
  for _, n in ipairs({{.StripTable}},
                      INTERNAL[1], INTERNAL[2], INTERNAL[3], INTERNAL[4]}) do
    STRIP[norm(n)] = true
  end
  return 0
end

-- norm folds a header name: letter case and '_' for '-' (C18).
function norm(name)
  return (string.lower(name):gsub('_', '-'))
end

-- dnValue escapes a DN value as RFC 2253 says: , + " \\ < > ; anywhere, a
-- leading # or space, a trailing space; bytes above 0x7F as \\XX, as
-- OpenSSL's RFC 2253 output (and nginx's $ssl_client_s_dn) has them.
local function dnValue(v)
  local out = v:gsub('[,+"\\<>;]', '\\%0'):gsub('[\128-\255]', function(b) return string.format('\\%02X', b:byte()) end)
  if out:sub(1, 1) == '#' or out:sub(1, 1) == ' ' then out = '\\' .. out end
  if #v > 0 and v:sub(-1) == ' ' then out = out:sub(1, -2) .. '\\ ' end
  return out
end

-- rdns reads OpenSSL's one-line DN (sslheaders: "C = US, O = Org,
-- CN = x", RDN by RDN from the root, multi-valued ones joined by " + ",
-- values with special characters quoted, \\ escapes and \\XX bytes) into
-- its RDNs, root first, each a list of {type, value}. Each attribute's
-- type ends at its first " = "; the value is read whole, unescaped.
local function rdns(oneline)
  local out, atvs, typ, val = {}, {}, nil, {}
  local quoted, i, n = false, 1, #oneline
  local function atv()
    table.insert(atvs, {typ or '', table.concat(val)})
    typ, val = nil, {}
  end
  while i <= n do
    local c = oneline:sub(i, i)
    local hex = oneline:sub(i + 1, i + 2)
    if c == '\\' and hex:match('^%x%x$') then
      table.insert(val, string.char(tonumber(hex, 16)))
      i = i + 3
    elseif c == '\\' and i < n then
      table.insert(val, oneline:sub(i + 1, i + 1))
      i = i + 2
    elseif c == '"' then
      quoted = not quoted
      i = i + 1
    elseif not quoted and typ == nil and oneline:sub(i, i + 2) == ' = ' then
      typ, val = table.concat(val), {}
      i = i + 3
    elseif not quoted and oneline:sub(i, i + 1) == ', ' then
      atv(); table.insert(out, atvs); atvs = {}
      i = i + 2
    elseif not quoted and oneline:sub(i, i + 2) == ' + ' then
      atv()
      i = i + 3
    else
      table.insert(val, c)
      i = i + 1
    end
  end
  atv(); table.insert(out, atvs)
  return out
end

-- rfc2253 turns OpenSSL's one-line DN into RFC 2253 ("CN=x,O=Org,C=US"):
-- the RDNs from the leaf's end, each value escaped anew.
local function rfc2253(oneline)
  local list, out = rdns(oneline), {}
  for k = #list, 1, -1 do
    local atvs = {}
    for _, a in ipairs(list[k]) do table.insert(atvs, a[1] .. '=' .. dnValue(a[2])) end
    table.insert(out, table.concat(atvs, '+'))
  end
  return table.concat(out, ',')
end

-- escaped rebuilds the PEM sslheaders gives (newlines as spaces) and
-- percent-encodes all but [A-Za-z0-9-._~], as nginx's
-- $ssl_client_escaped_cert (C14).
local function escaped(spaced)
  local body = spaced:match('^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-%s*(.-)%s*%-%-%-%-%-END CERTIFICATE%-%-%-%-%-%s*$')
  if not body then return nil end
  local lines = {'-----BEGIN CERTIFICATE-----'}
  for chunk in body:gmatch('%S+') do table.insert(lines, chunk) end
  table.insert(lines, '-----END CERTIFICATE-----')
  local pem = table.concat(lines, '\n') .. '\n'
  local out = pem:gsub('[^A-Za-z0-9%-%._~]', function(ch) return string.format('%%%02X', string.byte(ch)) end)
  return out
end

{{.Helpers}}function do_remap()
  local h = ts.client_request.header
  local cert, subject, issuer, serial = h[INTERNAL[1]], h[INTERNAL[2]], h[INTERNAL[3]], h[INTERNAL[4]]
  local tls = ts.client_request.get_ssl_protocol() ~= '-'
  -- Every caller-sent spelling goes (case, '_' for '-', sent twice).
  for name, _ in pairs(ts.client_request.get_headers()) do
    if STRIP[norm(name)] then h[name] = nil end
  end
  local host = string.lower((h['Host'] or ''):gsub(':%d+$', ''))
  if host == PUBLIC then
    return TS_LUA_REMAP_NO_REMAP -- the public host: no contract header at all
  end
  if not tls or cert == nil or cert == '' then
    if MODE == 'mandatory' then
      ts.http.set_resp(400, PAGE)
      return TS_LUA_REMAP_NO_REMAP_STOP
    end
{{.NoneLines}}    return TS_LUA_REMAP_NO_REMAP
  end
  local pem = escaped(cert)
  if pem == nil then
    ts.http.set_resp(502, 'the client certificate could not be read\n')
    return TS_LUA_REMAP_NO_REMAP_STOP
  end
{{.SetLines}}  return TS_LUA_REMAP_NO_REMAP
end
`
