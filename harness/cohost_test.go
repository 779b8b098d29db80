package harness

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
	"mtlsconform/partner"

	"github.com/google/go-cmp/cmp"
)

// TestCoHostServesEveryImplementation starts one co-host and a run of
// every implementation in it at once, as the matrix does: each serves a
// Mandatory and an Optional configuration as it would in a container of
// its own, a configuration it cannot load is refused with its own
// configuration test's words, no run starts a container, and once a run
// ends none of its balancer's processes is left running in the
// co-host, which the others still use.
func TestCoHostServesEveryImplementation(t *testing.T) {
	ctx := context.Background()
	needDocker(t)
	co := BeginCoHost(ctx, all.Implementations(), t.Logf)
	t.Cleanup(co.Close)
	a := pkitest.MustRootCA(t, "Partner A Root CA")
	leaf := pkitest.MustClient(t, a, "partner-a")
	var mu sync.Mutex
	var ips []string
	var wg sync.WaitGroup
	for _, impl := range all.Implementations() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env, err := Start(ctx, Options{Implementation: impl, CoHost: co, Logf: t.Logf})
			if err != nil {
				t.Errorf("%s: %v", impl.Name(), err)
				if env != nil {
					env.Close(ctx)
				}
				return
			}
			if co.Err() != nil || !env.direct {
				env.Close(ctx)
				t.Logf("%s: SKIPPED: nothing is co-hosted here (the engine's network is not reached directly, or: %v)", impl.Name(), co.Err())
				return
			}
			defer func() {
				if err := env.Close(ctx); err != nil {
					t.Errorf("%s: close: %v", impl.Name(), err)
				}
				// Asked to stop as the run closes, killed a second later.
				left := coHostedProcesses(t, co, impl.Name())
				for deadline := time.Now().Add(3 * time.Second); left != "" && time.Now().Before(deadline); {
					time.Sleep(100 * time.Millisecond)
					left = coHostedProcesses(t, co, impl.Name())
				}
				if left != "" {
					t.Errorf("%s: processes left in the co-host 3 s after the run closed:\n%s", impl.Name(), left)
				}
			}()
			got, urls, err := outcomes(ctx, env, a, leaf)
			if err != nil {
				t.Errorf("%s: %v", impl.Name(), err)
				return
			}
			mu.Lock()
			for _, u := range urls {
				ips = append(ips, strings.Split(strings.TrimPrefix(u, "https://"), ":")[0])
			}
			mu.Unlock()
			alone, err := Start(ctx, Options{Implementation: impl, Logf: t.Logf})
			if err != nil {
				t.Errorf("%s: the run in a container of its own: %v", impl.Name(), err)
				return
			}
			defer alone.Close(ctx)
			want, _, err := outcomes(ctx, alone, a, leaf)
			if err != nil {
				t.Errorf("%s in a container of its own: %v", impl.Name(), err)
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: co-hosted outcomes differ from a container of its own (-alone +co-hosted):\n%s", impl.Name(), diff)
			}
			if st := env.Stats(); st.ContainersStarted != backendContainers(env) || !st.Shared {
				t.Errorf("%s: stats %+v, want no container started but a backend's if any, and the balancer in the shared container", impl.Name(), st)
			}
			// A truststore that is no certificate: refused (or not) as in
			// a container of its own; where the shared balancer refuses it,
			// in its own configuration test's words or as its exit.
			junk := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
			_, coErr := env.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: junk})
			_, aloneErr := alone.LoadBalancer(ctx, lb.Config{Mode: contract.Mandatory, Truststore: junk})
			if (coErr == nil) != (aloneErr == nil) {
				t.Errorf("%s: a truststore that is no certificate: co-hosted %v, in a container of its own %v", impl.Name(), coErr, aloneErr)
			}
			if coErr != nil && !strings.Contains(coErr.Error(), "refused the configuration") && !strings.Contains(coErr.Error(), "exited") {
				t.Errorf("%s: a truststore it cannot load: %v, want its refusal", impl.Name(), coErr)
			}
		}()
	}
	wg.Wait()
	if len(ips) == 0 {
		return
	}
	for _, ip := range ips {
		if ip != co.ip {
			t.Errorf("a co-hosted configuration is served at %s, not at the co-host's %s", ip, co.ip)
		}
	}
}

// outcomes asks env for a Mandatory and an Optional configuration
// trusting ca, and calls each without a certificate and with leaf: what
// each call got, by mode and caller, and the configurations' URLs.
func outcomes(ctx context.Context, env *Environment, ca *pki.CA, leaf *pki.Identity) (map[string]string, []string, error) {
	got := map[string]string{}
	var urls []string
	for _, mode := range []contract.Mode{contract.Mandatory, contract.Optional} {
		bal, err := env.LoadBalancer(ctx, lb.Config{Mode: mode, Truststore: pki.Bundle(ca.Cert)})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", mode, err)
		}
		urls = append(urls, bal.URL)
		for who, cred := range map[string]*pki.Identity{"none": nil, "trusted": leaf} {
			res, err := env.Caller().Do(ctx, bal.URL, partner.Request{Path: "/dev-portal-xapi/products", Credential: cred})
			if err != nil {
				got[string(mode)+", "+who] = err.Error()
				continue
			}
			got[string(mode)+", "+who] = res.Outcome()
		}
	}
	return got, urls, nil
}

// coHostedProcesses lists the processes in the co-host whose command line
// names the folder of an implementation's runs.
func coHostedProcesses(t *testing.T, co *CoHost, impl string) string {
	t.Helper()
	out, err := exec.Command("docker", "exec", co.c.GetContainerID(), "sh", "-c",
		`for p in /proc/[0-9]*; do c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null); case "$c" in *"$0/"*) echo "${p#/proc/} $c";; esac; done`,
		coRoot+"/"+impl).CombinedOutput()
	if err != nil {
		t.Errorf("list the co-host's processes: %v\n%s", err, out)
		return ""
	}
	return strings.TrimSpace(string(out))
}

// The matrix's image as scripts/build-images.sh builds it: every
// implementation's packages, sorted, once each.
func TestCoHostImageIsTheScripts(t *testing.T) {
	out, err := exec.Command("bash", "-c", `cat ../lb/*/image.tsv | grep -v '^#' | cut -f3 | tr ' ' '\n' | grep . | LC_ALL=C sort -u | paste -sd ' '`).Output()
	if err != nil {
		t.Fatal(err)
	}
	spec := coImageSpec(all.Implementations())
	if got, want := spec.packages, strings.TrimSpace(string(out)); got != want {
		t.Errorf("co-host image packages = %q, build-images.sh builds %q", got, want)
	}
	if spec.binary != "nginx" || spec.ref != "mtlsconform/all:bookworm" {
		t.Errorf("co-host image = %+v, build-images.sh builds mtlsconform/all:bookworm proved by nginx", spec)
	}
}

// TestCoHostCommandsTakeThePipe: what the co-host asks of a balancer's
// processes goes through the control pipe, one line each; a command the
// pipe refuses goes through the engine instead, which costs a runc
// process (a multi-line stop script did, at every run's end).
func TestCoHostCommandsTakeThePipe(t *testing.T) {
	root := coRoot + "/trafficserver"
	cmds := [][]string{coStopCommand(root)}
	for _, impl := range all.Implementations() {
		if host, ok := hostOf(impl); ok {
			cmds = append(cmds, coStartCommand(root, (&slotHost{root: root}).movedArgs(host.HostCommand())))
		}
	}
	for _, cmd := range cmds {
		if _, ok := ctlLine("0123456789abcdef", cmd); !ok {
			t.Errorf("the control pipe refuses %q", cmd)
		}
	}
}
