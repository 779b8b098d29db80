package harness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/partner"
)

// TestMandatoryReference starts backend and nginx in Mandatory mode and
// checks the three facts everything else builds on.
func TestMandatoryReference(t *testing.T) {
	t.Parallel() // waits on containers, not the CPU: overlaps the others
	harnesstest.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env, err := harness.Start(ctx, harness.Options{Implementation: all.Default(), Logf: t.Logf})
	if env != nil {
		t.Cleanup(func() {
			if err := env.Close(context.Background()); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	root := pkitest.MustRootCA(t, "Partner Root CA")
	inter := pkitest.MustIntermediate(t, root, "Partner Issuing CA")
	leaf := pkitest.MustClient(t, inter, "partner-a")
	bal, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(inter.Cert, root.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	requireLoopbackPorts(t, ctx, env)
	caller := env.Caller()
	path := "/dev-portal-xapi/products"

	none, err := caller.Do(ctx, bal.URL, partner.Request{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if none.Status != http.StatusBadRequest || !strings.Contains(string(none.Body), "No required SSL certificate was sent") {
		t.Fatalf("no certificate: %s; want 400 with \"No required SSL certificate was sent\"", none.Outcome())
	}
	if !none.CertificateRequested {
		t.Error("the load balancer never asked for a client certificate")
	}
	if seen, err := env.BackendRequests(ctx, none.RequestID); err != nil || len(seen) != 0 {
		t.Errorf("backend saw %d request(s) for the refused call (err %v), want none", len(seen), err)
	}

	ok, err := caller.Do(ctx, bal.URL, partner.Request{Path: path, Credential: leaf})
	if err != nil {
		t.Fatal(err)
	}
	if ok.Status != http.StatusOK {
		t.Fatalf("trusted certificate: %s; want 200", ok.Outcome())
	}
	var products []productapi.Product
	if err := json.Unmarshal(ok.Body, &products); err != nil {
		t.Fatalf("product list does not parse: %v", err)
	}
	if diff := cmp.Diff(productapi.Products(), products); diff != "" {
		t.Errorf("product list (-want +got):\n%s", diff)
	}
	seen, err := env.BackendRequests(ctx, ok.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 {
		t.Fatalf("backend saw %d request(s), want 1", len(seen))
	}
	got := map[string]string{
		contract.HeaderVerify: http.Header(seen[0].Headers).Get(contract.HeaderVerify),
		contract.HeaderDN:     http.Header(seen[0].Headers).Get(contract.HeaderDN),
	}
	want := map[string]string{contract.HeaderVerify: "SUCCESS", contract.HeaderDN: "CN=partner-a,O=Test Org"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers the backend saw (-want +got):\n%s", diff)
	}
	if st := env.Stats(); st.ContainersStarted != 1+harnesstest.OwnBackendContainers(st) {
		t.Errorf("containers started = %d, want one load balancer and a backend container if any (backend %s)", st.ContainersStarted, st.Backend)
	}
	// Asking again for the same configuration reuses the running one.
	again, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(inter.Cert, root.Cert)})
	if err != nil || again != bal {
		t.Errorf("same configuration started a new load balancer (err %v)", err)
	}
}

func TestMain(m *testing.M) {
	harnesstest.Prepare()
	code := m.Run()
	if err := backend.Close(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "remove the tests' shared backend: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// TestTestcontainersEnvSocket: the socket path is only filled in where
// Ryuk, its only user, is off, and never over the user's own.
func TestTestcontainersEnvSocket(t *testing.T) {
	for _, c := range []struct {
		ryuk, socket string // "-" for unset
		want         bool
	}{
		{"-", "-", true},
		{"true", "-", true},
		{"false", "-", false},
		{"-", "/run/user/1000/docker.sock", false},
	} {
		for k, v := range map[string]string{"TESTCONTAINERS_RYUK_DISABLED": c.ryuk, "TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE": c.socket} {
			if v == "-" {
				old, had := os.LookupEnv(k)
				os.Unsetenv(k)
				if had {
					t.Cleanup(func() { os.Setenv(k, old) })
				}
			} else {
				t.Setenv(k, v)
			}
		}
		_, got := harness.TestcontainersEnv()["TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE"]
		if got != c.want {
			t.Errorf("Ryuk %s, socket %s: socket filled in = %v, want %v", c.ryuk, c.socket, got, c.want)
		}
	}
}
