package harness

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"mtlsconform/lb"
)

// A CoHost is one container in which the runs of one process (the
// matrix) start their shared balancers, each implementation's as
// processes of its own, instead of a container each. A container costs
// this machine's engine about 0.4–0.5 CPU-seconds to start and remove
// (runc, the network hook, the storage driver's mount), about a fifth of
// a matrix of five; a process in a running container, a fork.
//
// Its image holds every implementation's packages. Each run gets a folder
// of its own in the container, /co/<implementation>, which stands in for
// lb.ConfDir: every path of its files and commands is moved there, and
// its ports are numbered apart from every other run's. Its balancer is
// reloaded by a signal sent through the container's control pipe, and its
// log is a file in that folder. An implementation is co-hosted once per
// CoHost (a second run of it, another header scheme, starts its own
// container): balancers keep files outside lb.ConfDir (pid files, caches)
// at fixed paths.
type CoHost struct {
	ready chan struct{} // closed once started, or not
	err   error
	c     *testcontainers.DockerContainer
	ip    string
	dir   string // this machine's folder mounted as coRoot
	ctl   string // its control pipe's folder
	close func()

	mu      sync.Mutex
	claimed map[string]bool
	slots   int // slots set aside so far, by every run: ports never shared
}

const (
	coRoot  = "/co"
	coReady = "mtlsconform: shared container ready"
	// coImage holds every implementation's packages.
	coImage = "mtlsconform/all:bookworm"
)

// BeginCoHost starts a CoHost in the background, its image made of every
// implementation's packages (pass them all, whichever run: the image is
// the same then); runs given it (Options.CoHost) wait for it only when
// they start their balancer. Where it cannot be used (this machine does
// not reach the engine's default bridge) or did not start, each run
// starts its own container, as without it. Close removes it.
func BeginCoHost(ctx context.Context, impls []lb.Implementation, logf func(string, ...any)) *CoHost {
	co := &CoHost{ready: make(chan struct{}), claimed: map[string]bool{}}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	go func() {
		defer close(co.ready)
		co.err = co.start(ctx, impls, logf)
		if co.err != nil && co.close != nil {
			co.close()
		}
	}()
	return co
}

// coImageSpec is the image every implementation's balancer can run in.
func coImageSpec(impls []lb.Implementation) imageSpec {
	var pkgs []string
	for _, impl := range impls {
		for _, p := range strings.Fields(impl.Packages()) {
			if !slices.Contains(pkgs, p) {
				pkgs = append(pkgs, p)
			}
		}
	}
	slices.Sort(pkgs)
	return imageSpec{ref: coImage, packages: strings.Join(pkgs, " "), name: "all", binary: impls[0].Command()[0]}
}

// EnsureCoHostImage makes sure the image of the matrix's shared container
// (every implementation's packages: pass them all) is there, building it
// when missing; it answers its tag and whether it built it.
func EnsureCoHostImage(ctx context.Context, every []lb.Implementation, logf func(string, ...any)) (string, bool, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return "", false, err
	}
	defer cli.Close()
	return ensureCoImage(ctx, cli, every, logf)
}

func ensureCoImage(ctx context.Context, cli *testcontainers.DockerClient, every []lb.Implementation, logf func(string, ...any)) (string, bool, error) {
	spec := coImageSpec(every)
	built, err := ensureImageSpec(ctx, cli, spec.ref, &spec, logf)
	return spec.ref, built, err
}

func (co *CoHost) start(ctx context.Context, impls []lb.Implementation, logf func(string, ...any)) error {
	if len(impls) == 0 {
		return fmt.Errorf("no implementation to host")
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := cli.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err != nil || res.Network.Driver != "bridge" || !reaches(res.Network.IPAM.Config) {
		return fmt.Errorf("this machine does not reach the engine's default bridge directly")
	}
	ref, built, err := ensureCoImage(ctx, cli, impls, logf)
	if err != nil {
		return err
	} else if built {
		logf("built %s", ref)
	}
	dir, remove, err := TempDir()
	if err != nil {
		return err
	}
	co.dir = dir
	if co.ctl, err = makeCtl(dir); err != nil {
		remove()
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ctlScript), []byte(ctlScriptFor(coRoot+"/"+ctlDir, coReady)), 0o644); err != nil {
		remove()
		return err
	}
	id := newRunID()
	labels := map[string]string{LabelManaged: "true", LabelRun: id, LabelOwner: ownerID(), "org.mtlsconform.lbconfig": "co-host"}
	c, err := testcontainers.Run(context.WithoutCancel(ctx), ref,
		testcontainers.WithCmd("sh", coRoot+"/"+ctlScript),
		testcontainers.WithLabels(labels),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Binds = append(hc.Binds, dir+":"+coRoot)
			init := true
			hc.Init = &init // reaps the balancers, whose parents are gone
		}),
		testcontainers.WithWaitStrategyAndDeadline(DefaultTimeouts().ContainerReady, readyLog(coReady)),
	)
	co.c = c
	co.close = func() {
		if c != nil {
			terminateAll(context.WithoutCancel(ctx), []*testcontainers.DockerContainer{c})
		}
		remove()
	}
	if err != nil {
		return fmt.Errorf("start the container the runs share (%s): %w%s", ref, err, containerLogs(ctx, c))
	}
	info, err := c.Inspect(ctx)
	if err != nil {
		return err
	}
	if ep, ok := info.NetworkSettings.Networks["bridge"]; ok && ep.IPAddress.IsValid() {
		co.ip = ep.IPAddress.String()
		return nil
	}
	return fmt.Errorf("the container the runs share has no address on the default bridge")
}

// Close removes the container and its folder, once its start has ended.
func (co *CoHost) Close() {
	if co == nil {
		return
	}
	<-co.ready
	if co.err == nil && co.close != nil {
		co.close()
	}
}

// Err waits for the start and says why it failed, if it did.
func (co *CoHost) Err() error {
	<-co.ready
	return co.err
}

// claim reserves the co-host for a run's balancer of impl: false where
// another run has it already.
func (co *CoHost) claim(impl string) bool {
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.claimed[impl] {
		return false
	}
	co.claimed[impl] = true
	return true
}

// setAside numbers n slots apart from every other run's: their ports are
// in one network namespace.
func (co *CoHost) setAside(n int) int {
	co.mu.Lock()
	defer co.mu.Unlock()
	first := co.slots
	co.slots += n
	return first
}

// coHosted runs the balancer of h in the co-host, in the folder of its
// implementation: its files moved there, its command started through
// the control pipe, its log a file.
func (e *Environment) coHosted(ctx context.Context, impl hostable, h *slotHost) error {
	co := h.co
	name := e.opts.Implementation.Name()
	h.root = coRoot + "/" + name
	h.conf = filepath.Join(co.dir, name)
	h.dir, h.ownDir = filepath.Join(h.conf, "slots"), filepath.Join(h.conf, "own")
	h.c, h.ip, h.ctl = co.c, co.ip, co.ctl
	files := map[string][]byte{}
	slotFiles := map[string][]byte{slotMarker: []byte("slots of run " + e.RunID + "\n")}
	for file, data := range impl.HostFiles() {
		if strings.HasPrefix(file, "slots/") {
			slotFiles[file] = data
		} else {
			files[file] = data
		}
	}
	if err := writeConfFolder(h.conf, h.moved(files)); err != nil {
		return err
	}
	if err := writeSlotFiles(h.dir, h.moved(slotFiles)); err != nil {
		return err
	}
	if _, ok := impl.(processHost); ok {
		return nil // its processes are started one by one
	}
	if out, ran := run(ctx, h, coStartCommand(h.root, impl.HostCommand())); !ran || out != "" {
		return fmt.Errorf("start the shared %s in the container the runs share: %s", name, out)
	}
	wait, cancel := context.WithTimeout(ctx, e.opts.Timeouts.ContainerReady)
	defer cancel()
	log := filepath.Join(h.ownDir, coLog)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	checked := time.Now()
	for {
		if data, err := os.ReadFile(log); err == nil && bytes.Contains(data, []byte(impl.HostReadyLog())) {
			return nil
		}
		if time.Since(checked) > 100*time.Millisecond {
			checked = time.Now()
			if gone, _ := e.hostExited(wait, h); gone {
				return fmt.Errorf("the shared %s exited as it started in the container the runs share%s", name, e.hostLogs(ctx, h))
			}
		}
		select {
		case <-wait.Done():
			return fmt.Errorf("the shared %s did not start within %v in the container the runs share%s", name, e.opts.Timeouts.ContainerReady, e.hostLogs(ctx, h))
		case <-tick.C:
		}
	}
}

// coStartCommand starts cmd in the background, its output in
// root/own/host.log and its process id in root/own/host.pid.
func coStartCommand(root string, cmd []string) []string {
	return append([]string{"sh", "-c", `"$@" >"$0/` + coLog + `" 2>&1 </dev/null & echo $! >"$0/` + coPid + `"`, root + "/own"}, cmd...)
}

const (
	coLog = "host.log" // a co-hosted balancer's output, in its own/
	coPid = "host.pid" // its process id in the container
)

// moved is files with every path of lb.ConfDir in them moved to the
// balancer's folder in a co-host (files itself elsewhere). Keys and
// certificates are left as they are.
func (h *slotHost) moved(files map[string][]byte) map[string][]byte {
	if h.root == "" {
		return files
	}
	out := maps.Clone(files)
	for name, data := range out {
		if !strings.HasSuffix(name, ".pem") && !strings.HasSuffix(name, ".key") {
			out[name] = bytes.ReplaceAll(data, []byte(lb.ConfDir), []byte(h.root))
		}
	}
	return out
}

// movedArgs is a command with lb.ConfDir moved as moved does.
func (h *slotHost) movedArgs(cmd []string) []string {
	if h.root == "" {
		return cmd
	}
	out := make([]string, len(cmd))
	for i, a := range cmd {
		out[i] = strings.ReplaceAll(a, lb.ConfDir, h.root)
	}
	return out
}

// confDir is where the balancer reads what the harness renders under
// lb.ConfDir.
func (h *slotHost) confDir() string {
	if h.root != "" {
		return h.root
	}
	return lb.ConfDir
}

// signal sends a shared balancer a signal: to its container's first
// process, or, in a co-host, to its own, through the control pipe.
func (e *Environment) signal(ctx context.Context, h *slotHost, sig string) error {
	pid := "1" // in a container of its own, the balancer is its first process
	if h.root != "" {
		var err error
		if pid, err = h.hostPid(); err != nil {
			return err
		}
	}
	// The shell's kill, through the control pipe where there is one (a
	// fork; through the engine a runc process, 15 ms before the balancer
	// had it): the image need not have /bin/kill.
	if h.ctl != "" {
		out, ran := run(ctx, h, []string{"sh", "-c", "kill -" + sig + " " + pid})
		switch {
		case ran && out == "":
			return nil
		case h.root != "": // a co-host's balancer has no container of its own to signal
			return fmt.Errorf("signal %s: %s", sig, out)
		}
	}
	_, err := e.docker.ContainerKill(ctx, h.c.GetContainerID(), client.ContainerKillOptions{Signal: sig})
	return err
}

// hostPid is a co-hosted balancer's process id in the co-host, as its
// start wrote it.
func (h *slotHost) hostPid() (string, error) {
	data, err := os.ReadFile(filepath.Join(h.ownDir, coPid))
	if err != nil {
		return "", fmt.Errorf("the co-hosted balancer's process id: %w", err)
	}
	pid := strings.TrimSpace(string(data))
	// Never 1 (the container's init) nor 0 or below (a process group):
	// a signal meant for one balancer must not reach the others.
	if n, err := strconv.Atoi(pid); err != nil || n <= 1 {
		return "", fmt.Errorf("the co-hosted balancer's process id %q is not one", pid)
	}
	return pid, nil
}

// hostExited says whether a shared balancer has stopped, and with what
// status where its container did.
func (e *Environment) hostExited(ctx context.Context, h *slotHost) (bool, string) {
	if h.root == "" {
		st, err := h.c.State(ctx)
		if err != nil || st.Running {
			return false, ""
		}
		return true, "status " + strconv.Itoa(st.ExitCode)
	}
	pid, err := h.hostPid()
	if err != nil {
		return false, "" // no process of its own: an lb.Processes implementation's
	}
	out, ran := run(ctx, h, []string{"sh", "-c", "kill -0 " + pid})
	if ran && out != "" {
		return true, "no longer running"
	}
	return false, ""
}

// hostLogs is what a shared balancer printed last, for an error message.
func (e *Environment) hostLogs(ctx context.Context, h *slotHost) string {
	if h.root == "" {
		return containerLogs(ctx, h.c)
	}
	if _, err := h.hostPid(); err != nil {
		// Processes of their own (Traffic Server's) log to the
		// container's own output.
		return containerLogs(ctx, h.c)
	}
	text, err := readLimitedTail(filepath.Join(h.ownDir, coLog), 4096)
	if err != nil || text == "" {
		return ""
	}
	return "\n--- the balancer's log (last 4 KiB) ---\n" + text
}

func readLimitedTail(path string, n int64) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if int64(len(data)) > n {
		data = data[int64(len(data))-n:]
	}
	return string(data), nil
}

// stopCoHosted ends every process of a co-hosted balancer: those whose
// command line names its folder (workers that do not, nginx's, end with
// their master). They are asked to stop (TERM) and the run goes on; any
// still running a second later (Traffic Server takes seconds to stop) is
// killed. Waiting for them made a matrix about 0.3 s slower, and a
// process of a run that ended holds nothing another run needs: its ports
// and folder are its own.
func stopCoHosted(ctx context.Context, h *slotHost) {
	// One line, as the control pipe takes commands (a newline sends it
	// through the engine: a runc process and about 50 ms of CPU). bash's
	// mapfile reads each command line without a process of its own: tr
	// for each of a run's dozens of processes was 2% of a matrix's CPU.
	run(ctx, h, coStopCommand(h.root))
}

// coStopCommand stops the processes whose command line names root/.
func coStopCommand(root string) []string {
	return []string{"bash", "-c", `ours() { for p in /proc/[0-9]*; do pid=${p#/proc/}; [ "$pid" = "$$" ] && continue; ` +
		`mapfile -d '' -t a <"$p/cmdline" 2>/dev/null || continue; case " ${a[*]} " in *"$0/"*) echo "$pid";; esac; done; }; ` +
		`pids=$(ours); [ -n "$pids" ] || exit 0; kill -TERM $pids 2>/dev/null; ` +
		`( sleep 1; pids=$(ours); [ -z "$pids" ] || kill -KILL $pids 2>/dev/null ) >/dev/null 2>&1 & exit 0`, root}
}

// stopCoHostedAll stops the co-hosted balancers among hosts, at once.
func stopCoHostedAll(ctx context.Context, hosts []*slotHost) {
	var steps []func() error
	for _, h := range hosts {
		if h.root != "" && h.c != nil {
			steps = append(steps, func() error { stopCoHosted(ctx, h); return nil })
		}
	}
	parallel(steps...)
}

// coHostFits says whether the run can start its balancer in a co-host
// (Options.CoHost).
func (e *Environment) coHostFits() bool {
	o := e.opts
	return e.direct && e.network == nil && !o.Warm && !o.PublishPorts && !o.ContainerPerConfig &&
		o.Image == o.Implementation.Image()
}
