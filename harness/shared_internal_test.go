package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/partner"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSlotArchive checks what the shared balancer receives: parents
// before children, keys readable by their owner alone.
func TestSlotArchive(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeTar(tw, "", map[string][]byte{"slots/s01/server.key": []byte("k"), "slots/s01/http.conf": []byte("c")}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	tr := tar.NewReader(&buf)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name+" "+os.FileMode(h.Mode).String())
	}
	want := []string{"slots/ -rwxr-xr-x", "slots/s01/ -rwxr-xr-x", "slots/s01/http.conf -rw-r--r--", "slots/s01/server.key -rw-------"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
}

// TestSlotsCopiedWhenTheMountIsNotOurs plays an engine that mounts a
// folder of its own where ours was asked for (this program in a container
// of its own, say): the marker is not seen, so the shared balancer starts
// again without the mount, and its slots are copied in and serve.
func TestSlotsCopiedWhenTheMountIsNotOurs(t *testing.T) {
	seenMarker = "slots/.not-there"
	defer func() { seenMarker = slotMarker }()
	env, root, leaf := mountLab(t)
	servesTrusted(t, env, root, leaf, "a copied-in slot")
	if h := env.slotHosts[0]; h.dir != "" {
		t.Errorf("the shared balancer still has the mounted folder %s", h.dir)
	}
	if st, want := env.Stats(), 2+backendContainers(env); st.ContainersStarted != want {
		t.Errorf("containers started = %d, want %d (the balancer with the mount, the one without, a backend container if any)", st.ContainersStarted, want)
	}
	// A process of its own, and its new CRL, are copied in too.
	deliverRevocation(t, env, root, leaf)
	if h := env.slotHosts[0]; h.ownDir != "" {
		t.Errorf("the shared balancer still has the mounted folder %s for own/", h.ownDir)
	}
}

// TestOwnProcessFilesWrittenIntoTheMount: where the shared balancer
// mounts a folder of ours, a process of its own (C23) has its files, and
// its new CRL, written there directly.
func TestOwnProcessFilesWrittenIntoTheMount(t *testing.T) {
	env, root, leaf := mountLab(t)
	bal := deliverRevocation(t, env, root, leaf)
	data, err := os.ReadFile(filepath.Join(env.slotHosts[0].ownDir, bal.slot, "crl.pem"))
	if err != nil || !bytes.Contains(data, []byte("BEGIN X509 CRL")) {
		t.Errorf("the new CRL is not in the mounted own/%s: %v", bal.slot, err)
	}
}

// mountLab starts an environment of the default reference whose engine
// reaches its network directly (where slots are mounted), with a root CA
// and a leaf of it; the environment is closed when the test ends.
func mountLab(t *testing.T) (*Environment, *pki.CA, *pki.Identity) {
	t.Helper()
	needDocker(t)
	ctx := context.Background()
	env, err := Start(ctx, Options{Implementation: all.Default(), Logf: t.Logf})
	if env != nil {
		t.Cleanup(func() {
			if err := env.Close(ctx); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if !env.direct {
		t.Skip("SKIPPED: this engine's network is not reached directly, so nothing is mounted")
	}
	root, err := pki.NewRootCA("Partner Root CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := root.IssueClient("partner")
	if err != nil {
		t.Fatal(err)
	}
	return env, root, leaf
}

// deliverRevocation runs a configuration with a CRL as a process of its
// own, checks the leaf gets through, delivers a CRL that revokes it and
// waits until it is refused.
func deliverRevocation(t *testing.T, env *Environment, root *pki.CA, leaf *pki.Identity) *LoadBalancer {
	t.Helper()
	ctx := context.Background()
	crl, err := root.CRL(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert), CRL: pki.CRLPEM(crl), Instance: "own process"}
	bal, err := env.LoadBalancer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := env.Caller().Do(ctx, bal.URL, partner.Request{Path: "/dev-portal-xapi/products", Credential: leaf}); err != nil || res.Status != 200 {
		t.Fatalf("trusted partner through a process of its own: %v %v", err, res.Outcome())
	}
	revoking, err := root.UpdatedCRL(time.Hour, []*x509.Certificate{leaf.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	how, err := env.DeliverCRL(ctx, bal, pki.CRLPEM(revoking), true)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := env.Caller().Do(ctx, bal.URL, partner.Request{Path: "/dev-portal-xapi/products", Credential: leaf})
		if err == nil && res.Status == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the revoked leaf still gets %v %v", how, err, res.Outcome())
		}
	}
	return bal
}

// backendContainers is 1 where the run's backend is a container of its
// own, 0 where this program serves it.
func backendContainers(env *Environment) int {
	if env.backend != nil {
		return 1
	}
	return 0
}

// needDocker fails the test in CI where no engine answers, and skips it,
// loudly, elsewhere.
func needDocker(t *testing.T) {
	t.Helper()
	if err := CheckDocker(context.Background()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs Docker: %v", err)
		}
		t.Skipf("SKIPPED, no Docker: %v", err)
	}
}

// servesTrusted brings up a Mandatory configuration trusting root and
// checks that leaf gets the product list through it; it answers the call.
func servesTrusted(t *testing.T, env *Environment, root *pki.CA, leaf *pki.Identity, through string) *partner.Result {
	t.Helper()
	ctx := context.Background()
	bal, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := env.Caller().Do(ctx, bal.URL, partner.Request{Path: "/dev-portal-xapi/products", Credential: leaf})
	if err != nil || res.Status != 200 {
		t.Fatalf("trusted partner through %s: %v %v", through, err, res.Outcome())
	}
	return res
}

// TestConfigurationCopiedWhenTheMountIsEmpty plays an engine that mounts
// an empty folder of its own where ours, with the main configuration, was
// asked for: the balancer exits at once, starts again with everything
// copied in, and serves.
func TestConfigurationCopiedWhenTheMountIsEmpty(t *testing.T) {
	writeConf = func(conf string, _ map[string][]byte) error { return writeConfFolder(conf, nil) }
	defer func() { writeConf = writeConfFolder }()
	env, root, leaf := mountLab(t)
	servesTrusted(t, env, root, leaf, "a copied-in configuration")
	if h := env.slotHosts[0]; h.conf != "" || h.dir != "" {
		t.Errorf("the shared balancer still mounts folders of this machine: conf %q, slots %q", h.conf, h.dir)
	}
	if st, want := env.Stats(), 2+backendContainers(env); st.ContainersStarted != want {
		t.Errorf("containers started = %d, want %d (the balancer that exited, the one with its files copied in, a backend container if any)", st.ContainersStarted, want)
	}
}

// TestSlotFilesAppearWhole writes slots while another goroutine reads the
// folder as a balancer reloading at any moment would: a slot's folder is
// never seen without all its files, whole, and a file that names a folder
// (HAProxy's slots/<id>.cfg) never before that folder.
func TestSlotFilesAppearWhole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "slots")
	crl := bytes.Repeat([]byte("c"), 64<<10) // long enough to be caught half-written
	stop := make(chan struct{})
	seen := make(chan int)
	var violations []string
	go func() {
		looks := 0
		defer func() { seen <- looks }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			entries, _ := os.ReadDir(dir)
			looks++
			for _, e := range entries {
				name := e.Name()
				if id, ok := strings.CutSuffix(name, ".cfg"); ok {
					if _, err := os.Stat(filepath.Join(dir, id, "crl.pem")); err != nil {
						violations = append(violations, name+" before its folder")
					}
					continue
				}
				if !e.IsDir() {
					continue
				}
				conf, cerr := os.ReadFile(filepath.Join(dir, name, "httpd.conf"))
				data, derr := os.ReadFile(filepath.Join(dir, name, "crl.pem"))
				if cerr != nil || derr != nil || len(data) != len(crl) || string(conf) != "conf "+name {
					violations = append(violations, name+" seen half-written")
				}
			}
		}
	}()
	for i := range 150 {
		id := fmt.Sprintf("s%03d", i)
		err := writeSlotFiles(dir, map[string][]byte{
			"slots/" + id + "/httpd.conf": []byte("conf " + id),
			"slots/" + id + "/crl.pem":    crl,
			"slots/" + id + ".cfg":        []byte("frontend " + id),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	looks := <-seen
	if len(violations) > 0 {
		t.Errorf("a reader saw %d slot(s) not whole in %d looks, first: %s", len(violations), looks, violations[0])
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 300 {
		t.Errorf("slots/ holds %d entries, want 150 folders and 150 files (nothing staged left in it)", len(entries))
	}
	if info, err := os.Stat(filepath.Join(dir, "s007")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("a slot's folder must be readable by the balancer's user: %v %v", info.Mode(), err)
	}
}
