package trafficserver

import (
	"errors"
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
	for _, tool := range []string{"luajit", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI needs %s (scripts/prereqs.sh test installs it): %v", tool, err)
			}
			t.Skipf("SKIPPED: %s is not installed (scripts/prereqs.sh test installs it)", tool)
		}
	}
	dir := t.TempDir()
	script := string(templatesText(t)["mtls.lua"])
	start, end := strings.Index(script, "local function dnValue"), strings.Index(script, "-- escaped rebuilds")
	if start < 0 || end < start {
		t.Fatal("the DN functions are not in mtls.lua")
	}
	lua := filepath.Join(dir, "dn.lua")
	driver := script[start:end] + "\nio.write(rfc2253(io.read('*a')))\n"
	if err := os.WriteFile(lua, []byte(driver), 0o600); err != nil {
		t.Fatal(err)
	}
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
