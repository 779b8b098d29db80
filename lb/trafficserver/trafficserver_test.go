package trafficserver

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"mtlsconform/contract"
	"mtlsconform/lb"
	"mtlsconform/lb/lbtest"
)

// TestKit runs the conformance kit every implementation runs (go test
// ./lb/trafficserver -run Kit/golden -update rewrites the golden files
// after a deliberate change; read the diff before committing it).
func TestKit(t *testing.T) {
	lbtest.Run(t, Balancer{}, lbtest.Kit{Ext: "txt", Refusal: contract.RefuseMixed, Configs: lbtest.ConfigsWithoutCRLOrDepth(),
		Files: []string{"ip_allow.yaml", "mtls.lua", "plugin.config", "records.config", "remap.config", "runroot.yaml",
			"server-chain.pem", "server.key", "sni.yaml", "ssl_multicert.config", "storage.config", "truststore.pem"}})
}

// TestScriptParameters: the script is told the mode, the certificate
// header and the public host.
func TestScriptParameters(t *testing.T) {
	r, err := Balancer{}.Render(lbtest.Configs()["optional"], lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r.Files["remap.config"]), "@pparam=optional @pparam="+contract.DefaultCertHeader+" @pparam="+lb.PublicHost) {
		t.Errorf("remap.config does not give the script the mode, header and public host:\n%s", r.Files["remap.config"])
	}
}

// TestNotSupported: a CRL or a verify depth is a configuration Traffic
// Server 9.2 cannot be put in, said as such, never rendered without it.
func TestNotSupported(t *testing.T) {
	for name, cfg := range map[string]lb.Config{
		"crl":   {Mode: contract.Mandatory, Truststore: []byte("t"), CRL: []byte("crl")},
		"depth": {Mode: contract.Optional, Truststore: []byte("t"), VerifyDepth: 3},
	} {
		if _, err := (Balancer{}).Render(cfg, lbtest.Server); !errors.Is(err, contract.ErrNotSupported) {
			t.Errorf("%s: %v, want a not-supported error", name, err)
		}
	}
}

// TestScriptDNMatchesOpenSSL runs the script's DN conversion (in LuaJIT,
// the Lua that tslua embeds) on what sslheaders gives, OpenSSL's one-line
// form, for subjects with every kind of special character, and compares it
// with OpenSSL's own RFC 2253 rendering of the same certificate, as a DN:
// the values of a multi-valued RDN may come in either order.
func TestScriptDNMatchesOpenSSL(t *testing.T) {
	dir, lua := luaDriver(t, "-- escaped rebuilds", "\nio.write(rfc2253(io.read('*a')))\n")
	for _, subj := range []string{
		`/C=DE/O=Test Org/CN=partner-a`,
		`/C=US/O=Acme, Inc./OU=R and D/CN=Jos"e <x>;y=z\\w`,
		`/O=a = b/CN=#x`,
		`/OU=trail /CN= lead`,
		`/CN=J\xC3\xB6rg/emailAddress=ops@acme.example`,
		`/DC=com/DC=acme/CN=a+UID=42`,
	} {
		subj = strings.ReplaceAll(strings.ReplaceAll(subj, `\xC3`, "\xC3"), `\xB6`, "\xB6")
		key, cert := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
		if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", key, "-out", cert, "-subj", subj, "-multivalue-rdn", "-days", "1").CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", subj, err, out)
		}
		subject := func(opt string) string {
			out, err := exec.Command("openssl", "x509", "-in", cert, "-noout", "-subject", "-nameopt", opt).Output()
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSuffix(strings.TrimPrefix(string(out), "subject="), "\n")
		}
		oneline, want := subject("oneline"), subject("RFC2253")
		cmd := exec.Command("luajit", lua)
		cmd.Stdin = strings.NewReader(oneline)
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", subj, err, got)
		}
		if canonicalRDNs(string(got)) != canonicalRDNs(want) {
			t.Errorf("%s: the script made %q of %q; OpenSSL says %q", subj, got, oneline, want)
		}
	}
}

// canonicalRDNs sorts the values of each multi-valued RDN (split at
// unescaped "+"), the one freedom RFC 2253 renderings have here.
func canonicalRDNs(dn string) string {
	var rdns []string
	for _, rdn := range splitUnescaped(dn, ',') {
		vals := splitUnescaped(rdn, '+')
		sort.Strings(vals)
		rdns = append(rdns, strings.Join(vals, "+"))
	}
	return strings.Join(rdns, ",")
}

func splitUnescaped(s string, sep byte) []string {
	var out []string
	cur := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case s[i] == sep:
			out = append(out, s[cur:i])
			cur = i + 1
		}
	}
	return append(out, s[cur:])
}

// templatesText renders the files of a plain Mandatory configuration.
func templatesText(t *testing.T) map[string][]byte {
	t.Helper()
	r, err := Balancer{}.Render(lb.Config{Mode: contract.Mandatory, Truststore: []byte("trust\n")}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	return r.Files
}

// TestSchemeHelpersMatchOpenSSL runs the Lua helpers a header scheme may
// need (in LuaJIT) on what sslheaders gives — the one-line subject, the
// hex serial as BN_print writes it (no leading zeros), the PEM with its
// newlines as spaces — and compares them with OpenSSL's legacy slash form
// (X509_NAME_oneline, -nameopt compat) and with Go's reading of the same
// certificate: the DER of its names, its serial in decimal and in pairs,
// its DER in base64.
func TestSchemeHelpersMatchOpenSSL(t *testing.T) {
	dir, lua := luaDriver(t, "function do_remap", strings.Join(helperOrder, "")+`
local oneline, serial, spaced = io.read('*l'), io.read('*l'), io.read('*l')
print(legacy(oneline))
print(name64(spaced, 'subject'))
print(name64(spaced, 'issuer'))
print(colons(serial))
print(decimal(serial))
print(rawPlus(escaped(spaced)))
print(body(spaced))
print(xfccQuote('a"b\\c'))
`)
	for i, subj := range []string{
		`/C=DE/O=Test Org/CN=partner-a`,
		`/C=US/O=Acme, Inc./OU=R and D/CN=Jos"e <x>;y=z\\w`,
		`/O=a\+b=c\/d/CN=#x`,
		`/CN=J\xC3\xB6rg/emailAddress=ops@acme.example`,
		`/DC=com/DC=acme/CN=a+UID=42`,
	} {
		subj = strings.ReplaceAll(strings.ReplaceAll(subj, `\xC3`, "\xC3"), `\xB6`, "\xB6")
		key, cert := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
		// A serial of an odd number of hex digits, then OpenSSL's random ones.
		args := []string{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", key, "-out", cert, "-subj", subj, "-multivalue-rdn", "-days", "1"}
		if i == 0 {
			args = append(args, "-set_serial", "0xABCDEF012345678")
		}
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", subj, err, out)
		}
		openssl := func(prefix string, arg ...string) string {
			out, err := exec.Command("openssl", append([]string{"x509", "-in", cert, "-noout"}, arg...)...).Output()
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSuffix(strings.TrimPrefix(string(out), prefix), "\n")
		}
		oneline, compat := openssl("subject=", "-subject", "-nameopt", "oneline"), openssl("subject=", "-subject", "-nameopt", "compat")
		serial := strings.TrimLeft(openssl("serial=", "-serial"), "0")
		pemText, err := os.ReadFile(cert)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(pemText)
		crt, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		var pairs []string
		for _, b := range crt.SerialNumber.Bytes() {
			pairs = append(pairs, fmt.Sprintf("%02X", b))
		}
		cmd := exec.Command("luajit", lua)
		cmd.Stdin = strings.NewReader(oneline + "\n" + serial + "\n" + strings.ReplaceAll(string(pemText), "\n", " ") + "\n")
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", subj, err, got)
		}
		lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
		if len(lines) != 8 {
			t.Fatalf("%s: the driver printed %q", subj, got)
		}
		rawPlus, err := url.PathUnescape(lines[5])
		if err != nil || rawPlus != string(pemText) || strings.ContainsAny(lines[5], "\n ") ||
			strings.Contains(lines[5], "%2B") || strings.Contains(lines[5], "%3D") || strings.Contains(lines[5], "%2F") {
			t.Errorf("%s: rawPlus gave %q (%v), want the PEM URL-encoded with + = / raw", subj, lines[5], err)
		}
		for j, want := range []string{compat, base64.StdEncoding.EncodeToString(crt.RawSubject), base64.StdEncoding.EncodeToString(crt.RawIssuer),
			strings.Join(pairs, ":"), crt.SerialNumber.String(), lines[5], base64.StdEncoding.EncodeToString(crt.Raw), `a\"b\\c`} {
			if lines[j] != want {
				t.Errorf("%s: line %d of the helpers is %q, want %q", subj, j+1, lines[j], want)
			}
		}
	}
}

// customScheme is a team's scheme that needs every helper: a verify
// header with a quote in a value, the legacy subject in an XFCC element
// with the certificate, the issuer's DER and the serial in decimal.
var customScheme = contract.Scheme{
	Name:    "custom",
	Verify:  &contract.VerifyHeader{Header: "X-Client-Verify", Success: "it's ok", Failed: "bad", None: "none"},
	Subject: &contract.DNHeader{Place: contract.Place{Header: "X-Client", Field: "Subject"}, Rendering: contract.LegacySlash},
	Issuer:  &contract.DNHeader{Place: contract.Place{Header: "X-Client-Issuer"}, Rendering: contract.Base64DER},
	Serial:  &contract.SerialHeader{Place: contract.Place{Header: "X-Client-Serial"}, Form: contract.SerialDecimal},
	Cert:    contract.CertHeader{Place: contract.Place{Header: "X-Client", Field: "Cert"}, Encoding: contract.URLPEMRawPlus},
	Strip:   []string{"X-Client-Chain"},
}

// TestSchemeScriptsCompile: the script each built-in scheme and a team's
// own renders to is Lua that LuaJIT compiles, and sets what the scheme
// says.
func TestSchemeScriptsCompile(t *testing.T) {
	if _, err := exec.LookPath("luajit"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs luajit (scripts/prereqs.sh test installs it): %v", err)
		}
		t.Skip("SKIPPED: luajit is not installed (scripts/prereqs.sh test installs it)")
	}
	schemes := contract.Schemes()
	schemes["custom"] = customScheme
	dir := t.TempDir()
	for name, s := range schemes {
		r, err := Balancer{}.Render(lb.Config{Mode: contract.Mandatory, Truststore: []byte("trust\n"), Scheme: s}, lbtest.Server)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lua := filepath.Join(dir, name+".lua")
		if err := os.WriteFile(lua, r.Files["mtls.lua"], 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("luajit", "-b", lua, lua+".out").CombinedOutput(); err != nil {
			t.Errorf("%s: mtls.lua does not compile: %v\n%s", name, err, out)
		}
	}
	r, err := Balancer{}.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("trust\n"), Scheme: customScheme}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`for _, n in ipairs({'X-Client-Verify', CERT_HEADER, 'X-Client-Issuer', 'X-Client-Serial', 'X-Client-Chain',`,
		`    h['X-Client-Verify'] = 'none'`,
		`  h['X-Client-Verify'] = 'it\'s ok'`,
		`  h[CERT_HEADER] = 'Subject="' .. xfccQuote(legacy(subject or '')) .. '";Cert="' .. rawPlus(pem) .. '"'`,
		`  h['X-Client-Issuer'] = name64(cert, 'issuer')`,
		`  h['X-Client-Serial'] = decimal(serial or '')`,
	} {
		if !strings.Contains(string(r.Files["mtls.lua"]), want+"\n") {
			t.Errorf("the custom scheme's mtls.lua has no line %q", want)
		}
	}
	if !strings.Contains(string(r.Files["remap.config"]), "@pparam=X-Client @pparam=") {
		t.Errorf("remap.config does not name the XFCC header as the certificate's:\n%s", r.Files["remap.config"])
	}
	bad := customScheme
	bad.Verify = &contract.VerifyHeader{Header: "X-Client-Verify", Success: "ok\r\nX-Forged: 1", Failed: "bad", None: "none"}
	if _, err := (Balancer{}).Render(lb.Config{Mode: contract.Optional, Truststore: []byte("trust\n"), Scheme: bad}, lbtest.Server); !errors.Is(err, contract.ErrNotSupported) {
		t.Errorf("a verify value with CR LF: %v, want not supported", err)
	}
}

// luaDriver writes a Lua program of mtls.lua's functions (from its DN
// functions up to the line starting with upTo) followed by driver, into
// a temporary folder it returns; it needs luajit and openssl, which CI
// must have.
func luaDriver(t *testing.T, upTo, driver string) (dir, path string) {
	t.Helper()
	for _, tool := range []string{"luajit", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI needs %s (scripts/prereqs.sh test installs it): %v", tool, err)
			}
			t.Skipf("SKIPPED: %s is not installed (scripts/prereqs.sh test installs it)", tool)
		}
	}
	script := string(templatesText(t)["mtls.lua"])
	start, end := strings.Index(script, "local function dnValue"), strings.Index(script, upTo)
	if start < 0 || end < start {
		t.Fatalf("mtls.lua has no DN functions up to %q", upTo)
	}
	dir = t.TempDir()
	path = filepath.Join(dir, "driver.lua")
	if err := os.WriteFile(path, []byte(script[start:end]+driver), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// TestProcessStateOfItsOwn: processes of one container never share the
// folders Traffic Server writes its lock and state files in, and each
// starts from its own runroot.
func TestProcessStateOfItsOwn(t *testing.T) {
	r, err := Balancer{}.Render(lb.Config{Mode: contract.Mandatory, Truststore: []byte("trust\n")}, lbtest.Server)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range []string{"s03", "s04"} {
		files, start, err := Balancer{}.Process(r, id, 10446)
		if err != nil {
			t.Fatal(err)
		}
		runroot := string(files[lb.OwnDir(id)+"/runroot.yaml"])
		if strings.Contains(runroot, "/var/cache/") || strings.Contains(runroot, "/var/log/") {
			t.Errorf("%s: runroot.yaml keeps a folder every process would share:\n%s", id, runroot)
		}
		for _, line := range strings.Split(runroot, "\n") {
			for _, key := range []string{"localstatedir:", "runtimedir:", "logdir:", "cachedir:"} {
				if v, ok := strings.CutPrefix(line, key); ok {
					if dir := strings.TrimSpace(v); seen[dir] && !strings.Contains(dir, id) {
						t.Errorf("%s: %s %s is another process's too", id, key, dir)
					} else {
						seen[dir] = true
					}
				}
			}
		}
		if cmd := strings.Join(start, " "); !strings.Contains(cmd, lb.ConfDir+"/"+lb.OwnDir(id)+"/runroot.yaml") || !strings.HasSuffix(strings.TrimSpace(cmd), "& }") {
			t.Errorf("%s: start %q does not run its own runroot in the background", id, cmd)
		}
	}
}
