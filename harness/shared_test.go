package harness_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/harness"
	"mtlsconform/harness/harnesstest"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/lb/apache"
	"mtlsconform/lb/haproxy"
	"mtlsconform/partner"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// The backend the environments of startEnv share, as the matrix's runs
// do (their requests are told apart by their ids): a container start
// each saved. Started when first asked for; TestMain removes it.
var (
	backendOnce sync.Once
	backend     *harness.SharedBackend
	backendErr  error
)

func sharedBackend(t *testing.T) *harness.SharedBackend {
	t.Helper()
	backendOnce.Do(func() {
		backend, backendErr = harness.StartSharedBackend(context.Background(), harness.Options{Implementation: all.Default()})
	})
	if backendErr != nil {
		t.Fatalf("start the tests' shared backend: %v", backendErr)
	}
	return backend
}

// startEnv starts an environment for a test, on the shared backend where
// it can use it (harness.Options.Backend: not with a network of its own).
func startEnv(t *testing.T, opts harness.Options) (*harness.Environment, context.Context) {
	t.Helper()
	harnesstest.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	opts.Logf = t.Logf
	if opts.Implementation == nil {
		opts.Implementation = all.Default()
	}
	if opts.Backend == nil && !opts.Warm {
		opts.Backend = sharedBackend(t)
	}
	env, err := harness.Start(ctx, opts)
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
	return env, ctx
}

// verdict is what one call got: the status and, when the backend saw the
// request, the X-SSL-Client-Verify it received.
func verdict(t *testing.T, ctx context.Context, env *harness.Environment, bal *harness.LoadBalancer, cred *pki.Identity) string {
	t.Helper()
	res, err := env.Caller().Do(ctx, bal.URL, partner.Request{Path: "/dev-portal-xapi/products", Credential: cred})
	if err != nil || res.TLSAlert != "" {
		return "refused in the handshake"
	}
	seen, err := env.BackendRequests(ctx, res.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 {
		return http.StatusText(res.Status)
	}
	return http.StatusText(res.Status) + " " + http.Header(seen[0].Headers).Get(contract.HeaderVerify)
}

// TestSlotsAreIndependent asks every implementation that shares one
// balancer (or one container of balancer processes, lb.Processes) between
// configurations for two at once, a Mandatory one
// trusting partner A and an Optional one trusting partner B, and checks
// that each behaves as if it ran alone, in one container.
func TestSlotsAreIndependent(t *testing.T) {
	t.Parallel() // waits on containers, not the CPU: overlaps the others
	a := pkitest.MustRootCA(t, "Partner A Root CA")
	b := pkitest.MustRootCA(t, "Partner B Root CA")
	leafA, leafB := pkitest.MustClient(t, a, "partner-a"), pkitest.MustClient(t, b, "partner-b")
	for _, impl := range all.Implementations() {
		_, multiplexed := impl.(lb.Multiplexed)
		_, processes := impl.(lb.Processes)
		if !multiplexed && !processes {
			continue
		}
		t.Run(impl.Name(), func(t *testing.T) {
			t.Parallel()
			env, ctx := startEnv(t, harness.Options{Implementation: impl})
			cfgs := []lb.Config{
				{Mode: contract.Mandatory, Truststore: pki.Bundle(a.Cert)},
				{Mode: contract.Optional, Truststore: pki.Bundle(b.Cert)},
			}
			lbs := make([]*harness.LoadBalancer, len(cfgs))
			var wg sync.WaitGroup
			for i, cfg := range cfgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					if lbs[i], err = env.LoadBalancer(ctx, cfg); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			if lbs[0].URL == lbs[1].URL {
				t.Fatalf("two configurations share %s", lbs[0].URL)
			}
			if impl.Profile().Refusal != contract.RefuseHTTP400 {
			}
			got := map[string]string{
				"mandatory, none":      verdict(t, ctx, env, lbs[0], nil),
				"mandatory, partner A": verdict(t, ctx, env, lbs[0], leafA),
				"optional, none":       verdict(t, ctx, env, lbs[1], nil),
				"optional, partner B":  verdict(t, ctx, env, lbs[1], leafB),
				"optional, partner A":  verdict(t, ctx, env, lbs[1], leafA),
			}
			want := map[string]string{
				"mandatory, none":      "Bad Request",
				"mandatory, partner A": "OK SUCCESS",
				"optional, none":       "OK NONE",
				"optional, partner B":  "OK SUCCESS",
				"optional, partner A":  "OK FAILED",
			}
			// Where the implementation is known to refuse an untrusted
			// certificate in Optional mode by alert, that is what it does
			// in a slot too.
			for _, d := range impl.Profile().Deviations {
				if d.Clause == "C10" && d.Mode == contract.Optional && d.Observed == contract.RefuseTLSAlert {
					want["optional, partner A"] = "refused in the handshake"
				}
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: got %q, want %q", k, got[k], w)
				}
			}
			if bad := verdict(t, ctx, env, lbs[0], leafB); bad != "refused in the handshake" && bad != "Bad Request" {
				t.Errorf("mandatory, partner B (trusted by the other slot only): got %q, want a refusal", bad)
			}
			if st := env.Stats(); st.ContainersStarted != 1 || st.LoadBalancers != 2 {
				t.Errorf("stats = %+v, want 1 container (one shared balancer; the backend is the tests' shared one) for 2 configurations", st)
			}
		})
	}
}

// TestRefusedSlotConfiguration gives the shared balancer a truststore it
// cannot load: the error says what the balancer's own configuration test
// said, and the next configuration is served all the same.
func TestRefusedSlotConfiguration(t *testing.T) {
	t.Parallel() // waits on containers, not the CPU: overlaps the others
	env, ctx := startEnv(t, harness.Options{})
	junk := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	_, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: junk})
	if err == nil || !strings.Contains(err.Error(), "refused the configuration") {
		t.Fatalf("a truststore nginx cannot load: err = %v, want the configuration test's refusal", err)
	}
	root := pkitest.MustRootCA(t, "Partner Root CA")
	bal, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)})
	if err != nil {
		t.Fatalf("the configuration after a refused one: %v", err)
	}
	if got := verdict(t, ctx, env, bal, pkitest.MustClient(t, root, "partner")); got != "OK SUCCESS" {
		t.Errorf("trusted partner after a refused configuration: %q, want OK SUCCESS", got)
	}
}

// TestRefusalStaysWithItsConfiguration asks a shared balancer for six
// sound configurations and one it cannot load, all at once: the refusal
// is reported to that one alone, and the six serve their partners (those
// batched with the refused one are served again, each on its own).
func TestRefusalStaysWithItsConfiguration(t *testing.T) {
	t.Parallel() // waits on containers, not the CPU: overlaps the others
	junk := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	for _, impl := range []lb.Implementation{all.Default(), haproxy.Balancer{}, apache.Balancer{}} {
		t.Run(impl.Name(), func(t *testing.T) {
			t.Parallel()
			env, ctx := startEnv(t, harness.Options{Implementation: impl})
			const sound = 6
			roots := make([]*pki.CA, sound)
			for i := range roots {
				roots[i] = pkitest.MustRootCA(t, fmt.Sprintf("Partner %d Root CA", i))
			}
			lbs := make([]*harness.LoadBalancer, sound+1)
			errs := make([]error, sound+1)
			var wg sync.WaitGroup
			for i := range sound + 1 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					trust := junk
					if i < sound {
						trust = pki.Bundle(roots[i].Cert)
					}
					lbs[i], errs[i] = env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: trust})
				}()
			}
			wg.Wait()
			if errs[sound] == nil || !strings.Contains(errs[sound].Error(), "refused") && !strings.Contains(errs[sound].Error(), "exited") {
				t.Errorf("the configuration it cannot load: err = %v, want its refusal", errs[sound])
			}
			for i := range sound {
				if errs[i] != nil {
					t.Errorf("sound configuration %d: %v", i, errs[i])
					continue
				}
				// Asked for again: the same slot where the balancer lives on;
				// served anew where it exited with the refused one (Apache).
				bal, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(roots[i].Cert)})
				if err != nil {
					t.Errorf("sound configuration %d, asked for again: %v", i, err)
					continue
				}
				if impl.Name() != "apache" && bal != lbs[i] {
					t.Errorf("sound configuration %d was served again though its balancer lives", i)
				}
				if got := verdict(t, ctx, env, bal, pkitest.MustClient(t, roots[i], "partner")); got != "OK SUCCESS" {
					t.Errorf("sound configuration %d, its partner: %q, want OK SUCCESS", i, got)
				}
			}
		})
	}
}

// TestPublishedPorts runs the harness as on an engine whose network this
// machine does not reach: every port published on 127.0.0.1, slots copied
// in through the engine; and the other way of serving configurations, a
// container each.
func TestPublishedPorts(t *testing.T) {
	t.Parallel() // waits on containers, not the CPU: overlaps the others
	for name, opts := range map[string]harness.Options{
		"shared balancer":             {PublishPorts: true},
		"container per configuration": {PublishPorts: true, ContainerPerConfig: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env, ctx := startEnv(t, opts)
			root := pkitest.MustRootCA(t, "Partner Root CA")
			for i, mode := range []contract.Mode{contract.Mandatory, contract.Optional} {
				bal, err := env.LoadBalancer(ctx, lb.Config{Mode: mode, Truststore: pki.Bundle(root.Cert)})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(bal.URL, "https://127.0.0.1:") {
					t.Errorf("URL %s, want a port published on 127.0.0.1", bal.URL)
				}
				requireLoopbackPorts(t, ctx, env)
				if got := verdict(t, ctx, env, bal, pkitest.MustClient(t, root, "partner")); got != "OK SUCCESS" {
					t.Errorf("%s, trusted partner: %q, want OK SUCCESS", mode, got)
				}
				want := map[int]string{0: "Bad Request", 1: "OK NONE"}[i]
				if got := verdict(t, ctx, env, bal, nil); got != want {
					t.Errorf("%s, no certificate: %q, want %q", mode, got, want)
				}
			}
		})
	}
}

// requireLoopbackPorts fails unless every port the run's containers
// publish is on 127.0.0.1: nothing of a run may be reachable from another
// machine (the backend once was, on 0.0.0.0, through its image's EXPOSE).
func requireLoopbackPorts(t *testing.T, ctx context.Context, env *harness.Environment) {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", harness.LabelRun+"="+env.RunID)})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + harnesstest.OwnBackendContainers(env.Stats()); len(cs.Items) < want {
		t.Fatalf("%d containers of run %s listed, want a balancer and a backend container if any (%d) at least", len(cs.Items), env.RunID, want)
	}
	for _, c := range cs.Items {
		for _, p := range c.Ports {
			if p.PublicPort != 0 && p.IP.String() != "127.0.0.1" {
				t.Errorf("container %.12s (%s) publishes port %d on %s, want 127.0.0.1 or nothing", c.ID, c.Image, p.PrivatePort, p.IP)
			}
		}
	}
}

// TestSharedBackend: runs given one backend use it (their containers are
// their balancers alone), the backend outlives a run that closes, and a
// run on a network of its own (ports published) starts its own backend;
// where every run would have a network of its own, none is started.
func TestSharedBackend(t *testing.T) {
	t.Parallel() // waits on containers, not the CPU: overlaps the others
	harnesstest.RequireDocker(t)
	ctx := t.Context()
	b, err := harness.StartSharedBackend(ctx, harness.Options{Implementation: all.Default(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("close the shared backend: %v", err)
		}
	})
	// Where runs get networks of their own, none could share one: none
	// is kept running.
	if unshared, err := harness.StartSharedBackend(ctx, harness.Options{Implementation: all.Default(), Logf: t.Logf, PublishPorts: true}); err != nil || unshared != nil {
		unshared.Close(context.Background())
		t.Errorf("a shared backend no run could use: %v, %v; want none, no error", unshared, err)
	}
	root := pkitest.MustRootCA(t, "Partner Root CA")
	leaf := pkitest.MustClient(t, root, "partner")
	cfg := lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)}
	for i, opts := range []harness.Options{{Backend: b}, {Backend: b}, {Backend: b, PublishPorts: true}} {
		env, err := harness.Start(ctx, harness.Options{Implementation: all.Default(), Logf: t.Logf, Backend: opts.Backend, PublishPorts: opts.PublishPorts})
		if err != nil {
			t.Fatal(err)
		}
		bal, err := env.LoadBalancer(ctx, cfg)
		if err != nil {
			env.Close(context.Background())
			t.Fatal(err)
		}
		if got := verdict(t, ctx, env, bal, leaf); got != "OK SUCCESS" {
			t.Errorf("run %d: trusted partner: %q, want OK SUCCESS", i, got)
		}
		want := 1 // the shared balancer; the backend is the shared one
		if opts.PublishPorts {
			want = 2 // a network of its own: its own backend too
		}
		if st := env.Stats(); st.ContainersStarted != want {
			t.Errorf("run %d: %d containers started, want %d", i, st.ContainersStarted, want)
		}
		// Closed before the next run starts: the next one proves the
		// backend outlived it.
		if err := env.Close(context.Background()); err != nil {
			t.Errorf("run %d: close: %v", i, err)
		}
	}
}

// A shared backend that did not start is none to share: a run given it
// starts its own and serves, and Wait says why the shared one is missing.
func TestSharedBackendThatFailedIsNotUsed(t *testing.T) {
	t.Parallel()
	harnesstest.RequireDocker(t)
	gone, cancel := context.WithCancel(context.Background())
	cancel() // the shared backend's start is cut short
	b := harness.BeginSharedBackend(gone, harness.Options{Implementation: all.Default(), Logf: t.Logf})
	ctx := t.Context()
	env, err := harness.Start(ctx, harness.Options{Implementation: all.Default(), Logf: t.Logf, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close(context.Background())
	root := pkitest.MustRootCA(t, "Partner Root CA")
	bal, err := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: pki.Bundle(root.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	if got := verdict(t, ctx, env, bal, pkitest.MustClient(t, root, "partner")); got != "OK SUCCESS" {
		t.Errorf("trusted partner: %q, want OK SUCCESS", got)
	}
	if st := env.Stats(); st.ContainersStarted != 1+harnesstest.OwnBackendContainers(st) {
		t.Errorf("%d containers started, want its own balancer and a backend container if any (backend %s)", st.ContainersStarted, st.Backend)
	}
	if shared, err := b.Wait(); shared != nil || err == nil {
		t.Errorf("Wait: %v, %v; want none and the reason", shared, err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("closing a backend that never started: %v", err)
	}
}
