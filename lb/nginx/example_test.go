package nginx_test

import (
	"fmt"
	"strings"

	"mtlsconform/contract"
	"mtlsconform/lb"
	"mtlsconform/lb/nginx"
)

// Every implementation renders the same typed configuration into its own
// files; the harness copies them into the container.
func ExampleBalancer_Render() {
	cfg := lb.Config{Mode: contract.Optional, Truststore: []byte("-----BEGIN CERTIFICATE-----\n…\n")}
	r, err := nginx.Balancer{}.Render(cfg, lb.ServerFiles{Chain: []byte("chain"), Key: []byte("key")})
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(r.Config, "\n") {
		if strings.Contains(line, "ssl_verify_client") {
			fmt.Println(strings.TrimSpace(line))
		}
	}
	// Output:
	// ssl_verify_client      optional_no_ca;
}
