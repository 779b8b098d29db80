package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Labels put on every container and network the harness makes, so a sweep
// can find what an interrupted or killed run left behind.
const (
	LabelManaged = "org.mtlsconform.managed"
	LabelRun     = "org.mtlsconform.run"
	LabelOwner   = "org.mtlsconform.owner" // host:pid of the process that made it
)

// socketOverride is testcontainers' setting for the engine's socket as a
// container mounts it (TestcontainersEnv).
const socketOverride = "TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE"

// ErrNoDocker means no Docker engine answered; the message says how to get one.
var ErrNoDocker = errors.New("no Docker engine answered")

// TestcontainersEnv returns the testcontainers settings this harness
// needs that the environment does not set yet; the program applies them
// (cmd/mtlsconform at start, harnesstest.Main in tests) before anything
// reads them, since testcontainers reads them once:
//   - Ryuk off: its image cannot be pulled where no registry is reachable,
//     and the harness cleans up by label itself;
//   - a host override for a local unix socket when /.dockerenv exists,
//     because testcontainers then believes it runs inside a container and
//     dials the default gateway instead of the host's loopback;
//   - with Ryuk off, the path of the engine's socket as a container would
//     mount it: only Ryuk mounts it, and testcontainers
//     otherwise works it out with a client and an info call of its own,
//     about 20 ms before every run's first container.
//
// Anything the user set explicitly is left alone.
func TestcontainersEnv() map[string]string {
	need := map[string]string{}
	if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !set {
		need["TESTCONTAINERS_RYUK_DISABLED"] = "true"
	}
	_, socketSet := os.LookupEnv(socketOverride)
	if ryukOff := need["TESTCONTAINERS_RYUK_DISABLED"] == "true" || os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "true"; ryukOff && !socketSet {
		need[socketOverride] = "/var/run/docker.sock"
	}
	_, overridden := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE")
	dockerHost := os.Getenv("DOCKER_HOST")
	localSocket := dockerHost == "" || strings.HasPrefix(dockerHost, "unix://")
	if _, err := os.Stat("/.dockerenv"); err == nil && !overridden && localSocket {
		need["TESTCONTAINERS_HOST_OVERRIDE"] = "127.0.0.1"
	}
	return need
}

// dockerClient connects to the engine and checks that it answers.
func dockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	missing := TestcontainersEnv()
	delete(missing, socketOverride) // a speed-up, not needed
	if len(missing) > 0 {
		var kv []string
		for k, v := range missing {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		return nil, fmt.Errorf("%w: testcontainers is not set up for this machine: set %s before the first container "+
			"(mtlsconform does it itself; in your own tests call harnesstest.Main from TestMain)", ErrNoDocker, strings.Join(kv, " "))
	}
	// testcontainers falls back to the default socket when DOCKER_HOST does
	// not answer; a user who named an engine must get that engine or an
	// error, never another one.
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		if err := pingHost(ctx, host); err != nil {
			return nil, fmt.Errorf("%w: DOCKER_HOST=%s: %v; start that engine, or unset DOCKER_HOST to use the local one (scripts/prereqs.sh installs and starts one)", ErrNoDocker, host, err)
		}
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v; start it (scripts/prereqs.sh installs and starts one) or set DOCKER_HOST", ErrNoDocker, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pingCtx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: %v; start it (scripts/prereqs.sh installs and starts one) or set DOCKER_HOST", ErrNoDocker, err)
	}
	return cli, nil
}

func pingHost(ctx context.Context, host string) error {
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err
}

// CheckDocker reports whether a Docker engine answers, with an error that
// says what to do when none does.
func CheckDocker(ctx context.Context) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	return cli.Close()
}

func ownerID() string {
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(os.Getpid())
}

// ownerAlive says whether the process named in an owner label still runs.
// Only processes of this host can be judged; others count as alive.
func ownerAlive(owner string) bool {
	host, pidText, ok := strings.Cut(owner, ":")
	me, _ := os.Hostname()
	if !ok || host != me {
		return true
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return false
	}
	return processAlive(pid)
}

// processAlive says whether a process of this host still runs; a zombie
// (killed, not yet reaped by its parent) counts as gone.
func processAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			if state := stat[i+2]; state == 'Z' || state == 'X' {
				return false
			}
		}
	}
	return true
}

// SweepReport says what a sweep removed.
type SweepReport struct {
	Containers []string
	Networks   []string
}

// Sweep removes containers and networks of the harness whose owning process
// is gone (a run that was killed, or timed out in go test), and kept
// containers (Options.Warm) that no run uses now; or, when run is not
// empty, everything of that run.
func Sweep(ctx context.Context, run string) (SweepReport, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return SweepReport{}, err
	}
	defer cli.Close()
	return sweep(ctx, cli, run, 0)
}

// sweep removes what Sweep does, kept containers only when idle for longer
// than warmIdle (0: whatever their age).
func sweep(ctx context.Context, cli *testcontainers.DockerClient, run string, warmIdle time.Duration) (SweepReport, error) {
	return sweepKept(ctx, cli, run, warmIdle, "")
}

// sweepKept is sweep with kept units judged only where their folders are
// under keptUnder (all of them when it is empty): a test sweeps its own
// units, never a developer's.
func sweepKept(ctx context.Context, cli *testcontainers.DockerClient, run string, warmIdle time.Duration, keptUnder string) (SweepReport, error) {
	var rep SweepReport
	var errs []error
	filter := client.Filters{}.Add("label", LabelManaged+"=true")
	if run != "" {
		filter = filter.Add("label", LabelRun+"="+run)
	}
	warm := newWarmSweeper(warmIdle)
	warm.under = keptUnder
	defer warm.done()
	if run == "" {
		defer warm.folders() // after the containers: their units are judged by them
	}
	doomed := func(labels map[string]string, created int64) bool {
		if run != "" {
			return true
		}
		if key, ok := labels[LabelWarm]; ok {
			return warm.doomed(key, labels[LabelWarmDir], time.Unix(created, 0))
		}
		return !ownerAlive(labels[LabelOwner])
	}
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return rep, fmt.Errorf("list containers for cleanup: %w", err)
	}
	for _, c := range cs.Items {
		if !doomed(c.Labels, c.Created) {
			continue
		}
		if err := removeContainer(ctx, cli, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove container %.12s: %w", c.ID, err))
			continue
		}
		rep.Containers = append(rep.Containers, c.ID)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("list networks for cleanup: %w", err))...)
	}
	for _, n := range ns.Items {
		if !doomed(n.Labels, n.Created.Unix()) {
			continue
		}
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		rep.Networks = append(rep.Networks, n.Name)
	}
	return rep, errors.Join(errs...)
}

// removeContainer removes a container, and is done when it is gone: another
// process sweeping at the same time (a run in another terminal, another
// test package) may be removing it already, and then it waits for that.
func removeContainer(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
	_, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || isNotFound(err) {
		return nil
	}
	if !strings.Contains(err.Error(), "already in progress") {
		return err
	}
	for range 100 {
		if _, ierr := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); isNotFound(ierr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w (and it was still there 10 s later)", err)
}

func isNotFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "No such") || strings.Contains(err.Error(), "not found"))
}

// Owned lists the containers and networks whose owner label names the
// given process of this host: what a run of that process left behind.
func Owned(ctx context.Context, pid int) (containers, networks []string, err error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer cli.Close()
	host, _ := os.Hostname()
	filter := client.Filters{}.Add("label", LabelOwner+"="+host+":"+strconv.Itoa(pid))
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cs.Items {
		containers = append(containers, c.ID)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return nil, nil, err
	}
	for _, n := range ns.Items {
		networks = append(networks, n.Name)
	}
	return containers, networks, nil
}

// TempDirsOf lists the temporary folders a process made with TempDir.
func TempDirsOf(pid int) []string {
	return tempGlob(tempPrefix + strconv.Itoa(pid) + "-*")
}
