package harness_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/harness"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
)

// TestWarmContainersServeTheNextRun: a run with Warm leaves its shared
// balancer, and its backend where that is a container, running; the next
// one uses them (no container started) and proves its configuration on a
// port no earlier run used; a run beside it, while they are taken, starts
// a balancer of its own; and a sweep removes what no run holds.
func TestWarmContainersServeTheNextRun(t *testing.T) {
	harnesstest.RequireDocker(t)
	t.Run("backend served by the harness", func(t *testing.T) { warmRuns(t, false) })
	t.Run("backend in a container", func(t *testing.T) { warmRuns(t, true) })
}

func warmRuns(t *testing.T, backendContainer bool) {
	// Kept units are found through the cache folder: this test's own.
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	ctx := t.Context()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// The units' keys, as their folders name them; remembered, since a
	// sweep removes the folders too.
	keys := map[string]bool{}
	kept := func() []string {
		t.Helper()
		dirs, _ := os.ReadDir(filepath.Join(cache, "mtlsconform", "warm"))
		for _, d := range dirs {
			keys[d.Name()] = true
		}
		var ids []string
		for k := range keys {
			list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
				Filters: client.Filters{}.Add("label", harness.LabelWarm+"="+k)})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range list.Items {
				ids = append(ids, c.ID)
			}
		}
		return ids
	}
	t.Cleanup(func() {
		if err := harness.RemoveKept(context.Background(), cache); err != nil {
			t.Errorf("remove the kept containers: %v", err)
		}
	})
	root := pkitest.MustRootCA(t, "Partner Root CA")
	leaf := pkitest.MustClient(t, root, "partner")
	cfg := lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)}
	start := func() *harness.Environment {
		t.Helper()
		env, err := harness.Start(ctx, harness.Options{Implementation: all.Default(), Logf: t.Logf, Warm: true, BackendContainer: backendContainer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { env.Close(context.Background()) })
		return env
	}
	serve := func(env *harness.Environment, run string) *harness.LoadBalancer {
		t.Helper()
		bal, err := env.LoadBalancer(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		// The run's own caller trusts only its own server CA: a slot still
		// serving an earlier run's configuration fails this.
		if got := verdict(t, ctx, env, bal, leaf); got != "OK SUCCESS" {
			t.Errorf("%s: trusted partner: %q, want OK SUCCESS", run, got)
		}
		return bal
	}
	stats := func(env *harness.Environment, run string, started, reused int) {
		t.Helper()
		if st := env.Stats(); st.ContainersStarted != started || st.ContainersKept != reused {
			t.Errorf("%s: %d containers started, %d kept ones used; want %d and %d", run, st.ContainersStarted, st.ContainersKept, started, reused)
		}
	}

	first := start()
	bal1 := serve(first, "first run")
	// A configuration changed in place (C23) runs as a process of its own
	// in the kept balancer: it is stopped when the run ends.
	inPlace := cfg
	inPlace.Instance = "changed in place"
	own, err := first.LoadBalancer(ctx, inPlace)
	if err != nil {
		t.Fatal(err)
	}
	// kb: a backend container is kept (asked for); b: the harness could
	// not serve the backend (a firewall), so each run starts one.
	kb, b := 0, 0
	if backendContainer {
		kb = 1
	} else {
		b = harnesstest.OwnBackendContainers(first.Stats())
	}
	stats(first, "first run", 1+kb+b, 0)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(kept()); n != 1+kb {
		t.Fatalf("after the first run: %d kept containers, want %d (the balancer, and a backend container if asked for)", n, 1+kb)
	}
	ownAddr := strings.TrimPrefix(own.URL, "https://")
	if conn, err := net.DialTimeout("tcp", ownAddr, 2*time.Second); err == nil {
		conn.Close()
		t.Errorf("the first run's process of its own still listens on %s in the kept balancer", ownAddr)
	}

	second := start()
	bal2 := serve(second, "second run")
	stats(second, "second run", b, 1+kb)
	if bal2.URL == bal1.URL {
		t.Errorf("the second run's configuration is served on %s, the port of the first run's: a port serves one configuration", bal2.URL)
	}

	// The balancer is the second run's while it lasts: a third at the same
	// time starts its own, and shares the backend.
	third := start()
	serve(third, "run beside it")
	stats(third, "run beside it", 1+b, kb)
	if err := third.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(kept()); n != 1+kb {
		t.Errorf("after three runs: %d kept containers, want the same %d (the third run's own balancer removed)", n, 1+kb)
	}

	// A sweep (mtlsconform sweep) removes kept containers no run holds;
	// this one only the test's, not those a developer's --warm runs keep.
	if _, err := harness.SweepKeptUnder(ctx, cache); err != nil {
		t.Fatal(err)
	}
	if ids := kept(); len(keys) != 1+kb || len(ids) != 0 {
		t.Errorf("after a sweep: %d kept containers left of %d units, want none of %d", len(ids), len(keys), 1+kb)
	}
	if dirs, _ := os.ReadDir(filepath.Join(cache, "mtlsconform", "warm")); len(dirs) != 0 {
		t.Errorf("after a sweep: %d kept units' folders left, want none", len(dirs))
	}
}
