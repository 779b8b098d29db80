package trafficserver

import (
	"errors"
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
