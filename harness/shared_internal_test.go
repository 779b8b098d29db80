package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSlotsMoveEverything renders every pinned configuration, with every
// mutation of the implementation, into a slot: the slot's files live under
// its own folder, it listens on its own port and nowhere on 8443, and it
// names no file outside its folder. The Optional slot is pinned as a
// golden file.
func TestSlotsMoveEverything(t *testing.T) {
	for _, impl := range Implementations() {
		m, ok := impl.(Multiplexed)
		if !ok {
			continue
		}
		if len(m.HostFiles()) == 0 || len(m.HostCommand()) == 0 || (m.Reload().Signal == "") == (len(m.Reload().Exec) == 0) || len(m.ConfigTest()) == 0 {
			t.Errorf("%s: the shared balancer is not described completely", impl.Name())
		}
		for name, cfg := range goldenConfigs {
			variants := [][]string{nil}
			for mut := range impl.Mutations() {
				variants = append(variants, []string{mut})
			}
			for _, muts := range variants {
				cfg := cfg
				cfg.Mutations = muts
				r, err := impl.Render(cfg, goldenServer)
				if err != nil {
					continue // not supported, or a mutation this configuration has nothing for
				}
				files, err := m.Slot(r, "s07", 8450)
				if err != nil {
					t.Errorf("%s %s %v: %v", impl.Name(), name, muts, err)
					continue
				}
				checkSlotFiles(t, impl.Name()+" "+name+" "+strings.Join(muts, ","), files, r)
				if name == "optional" && muts == nil {
					compareGolden(t, filepath.Join("testdata", "golden", impl.Name()+"-slot-optional.txt"), slotText(files))
				}
			}
		}
	}
}

func checkSlotFiles(t *testing.T, what string, files map[string][]byte, r Rendered) {
	t.Helper()
	var text strings.Builder
	for name, data := range files {
		if !strings.HasPrefix(name, "slots/s07") {
			t.Errorf("%s: file %s is outside the slot", what, name)
		}
		if strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".pem") {
			continue
		}
		text.Write(data)
	}
	conf := text.String()
	if !strings.Contains(conf, "8450") || strings.Contains(conf, "8443") {
		t.Errorf("%s: the slot does not listen on its own port alone:\n%s", what, conf)
	}
	for _, ref := range strings.Fields(strings.NewReplacer(`"`, " ", ";", " ", ",", " ").Replace(conf)) {
		if strings.HasPrefix(ref, lbConfDir+"/") && !strings.HasPrefix(ref, lbConfDir+"/slots/s07/") {
			t.Errorf("%s: the slot names %s, outside its folder", what, ref)
		}
	}
	if len(r.Files) == 0 {
		t.Errorf("%s: nothing rendered", what)
	}
}

func slotText(files map[string][]byte) string {
	var b strings.Builder
	for _, name := range sortedKeys(bytesToText(files)) {
		if strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".pem") {
			continue
		}
		b.WriteString("=== " + name + "\n")
		b.Write(files[name])
	}
	return b.String()
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("the slot differs from %s (-want +got):\n%s", path, diff)
	}
}

// TestSlotArchive checks what the shared balancer receives: parents
// before children, keys readable by their owner alone.
func TestSlotArchive(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeTar(tw, map[string][]byte{"slots/s01/server.key": []byte("k"), "slots/s01/http.conf": []byte("c")}); err != nil {
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
	if err := CheckDocker(context.Background()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs Docker: %v", err)
		}
		t.Skipf("SKIPPED, no Docker: %v", err)
	}
	seenMarker = "slots/.not-there"
	defer func() { seenMarker = slotMarker }()
	ctx := context.Background()
	env, err := Start(ctx, Options{Logf: t.Logf})
	if env != nil {
		defer func() {
			if err := env.Close(ctx); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}()
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
	lb, err := env.LoadBalancer(ctx, LBConfig{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := env.Caller().Do(ctx, lb.URL, Request{Path: "/dev-portal-xapi/products", Credential: leaf})
	if err != nil || res.Status != 200 {
		t.Fatalf("trusted partner through a copied-in slot: %v %v", err, res.Outcome())
	}
	if h := env.slotHosts[0]; h.dir != "" {
		t.Errorf("the shared balancer still has the mounted folder %s", h.dir)
	}
	if st := env.Stats(); st.ContainersStarted != 3 {
		t.Errorf("containers started = %d, want 3 (backend, the balancer with the mount, the one without)", st.ContainersStarted)
	}
}
