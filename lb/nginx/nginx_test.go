package nginx

import (
	"testing"

	"mtlsconform/contract"
	"mtlsconform/lb/lbtest"
)

// TestKit runs the conformance kit every implementation runs (go test
// ./lb/nginx -run Kit/golden -update rewrites the golden files after a
// deliberate change; read the diff before committing it).
func TestKit(t *testing.T) {
	lbtest.Run(t, Balancer{}, lbtest.Kit{Ext: "conf", Refusal: contract.RefuseHTTP400,
		Files: []string{"nginx.conf", "server-chain.pem", "server.key", "truststore.pem"}, Main: "nginx.conf"})
}
