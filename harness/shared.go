package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mtlsconform/contract"
	"mtlsconform/lb"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// Slot hosts: how many slots one shared balancer takes. Every slot a
// balancer holds makes its reloads slower (measured, one slot added at a
// time: nginx ~100 ms at 5 slots, ~200 ms at 30; Apache httpd ~40 ms up to
// ~25 slots, then up to 2 s as graceful restarts pile up), so a balancer
// takes 24 and the next configuration starts another. Each slot is a
// port; where ports have to be published (the engine's network is not
// reachable from here) every published port costs the container's start
// and removal about 20 and 50 ms, so fewer are set aside then.
const (
	slotsDirect    = 24
	slotsPublished = 12
	// slotBasePort is the first slot's port. Ports are numbered across the
	// run, never per balancer: the engine may give a new balancer the
	// address of one that exited, and a caller still holding a slot of the
	// old one must then meet a closed port, never another configuration.
	// The range stays clear of 8443, where a balancer of its own listens.
	slotBasePort = 10443
	// slotReloadGrace is how long a reload may take to serve a new slot
	// before the configuration test is asked why it does not.
	slotReloadGrace = 2 * time.Second
	// slotResignal is how long a reload signal may go unanswered before it
	// is sent again, doubled each time it is. Each signal costs the engine
	// a runc process, and a graceful restart asked for again while it runs
	// starts over (Apache): resent every 50 ms, a full Apache run sent
	// about 70 signals and took 6–10 s; 4.8–5.9 s this way.
	slotResignal = 200 * time.Millisecond
	// slotResignalMax bounds the doubling of slotResignal.
	slotResignalMax = 800 * time.Millisecond
)

// slotHost is one running shared balancer.
type slotHost struct {
	ready chan struct{} // closed once started (or failed to)
	err   error
	c     *testcontainers.DockerContainer
	ip    string // its address on the run's network, when reached directly
	// dir is this machine's folder mounted as the balancer's slots/, where
	// slots are written directly; empty when they are copied in through
	// the engine (about 60 ms a copy).
	dir       string
	removeDir func()
	// ownDir is this machine's folder mounted as the balancer's own/,
	// where processes of their own (C23) keep their files: written
	// directly, as slots are. Empty where they are copied in.
	ownDir string
	// conf is this machine's folder mounted as lb.ConfDir itself, with
	// the main configuration; empty where it is copied in.
	conf string
	// ctl is this machine's folder of the balancer's control pipe, through
	// which it runs commands (ctl.go); empty where they go through the
	// engine.
	ctl     string
	size    int
	first   int // the run-wide number of its first slot
	handed  int // slots handed out (never reused: a port serves one configuration)
	reload  sync.Mutex
	pmu     sync.Mutex
	pending []*slotRequest
	broken  error // a refused configuration stays on disk: no new slots here (guarded by Environment.mu)
	// part names a kept balancer (Options.Warm) in its unit ("lb0"); empty
	// for one of the run's own. kept: this run found it running. owns
	// counts the processes of their own started in it (Environment.mu).
	part     string
	kept     bool
	owns     int
	runFirst int // the run-wide number startSlotHost gave it
	// co is the container of the process's runs where this balancer runs
	// in it (cohost.go), and root its folder there, which stands in for
	// lb.ConfDir; nil and "" for a balancer in a container of its own.
	co   *CoHost
	root string
}

// keep says whether Close leaves the balancer running for the next run: a
// kept one that started and took every configuration it was given
// (Environment.mu held).
func (h *slotHost) keep() bool {
	return h.part != "" && h.c != nil && h.err == nil && h.broken == nil
}

type slotRequest struct {
	id    string
	port  int
	files map[string][]byte
	lb    *LoadBalancer
	done  chan struct{}
	err   error
}

// startSlotHost starts a shared balancer in the background (e.mu held);
// its ready channel closes when it runs or failed to.
func (e *Environment) startSlotHost(ctx context.Context, impl hostable) *slotHost {
	size := slotsPublished
	if e.direct {
		size = slotsDirect
	}
	h := &slotHost{ready: make(chan struct{}), size: size, first: e.slotsSetAside, runFirst: e.slotsSetAside}
	if e.warmHosts != nil {
		h.part = "lb" + strconv.Itoa(e.warmParts)
		e.warmParts++
	}
	e.slotsSetAside += size
	if co := e.opts.CoHost; co != nil && e.coHostFits() && co.claim(e.opts.Implementation.Name()) {
		h.co, h.first = co, co.setAside(size)
	}
	e.slotHosts = append(e.slotHosts, h)
	done := e.creating()
	go func() {
		defer close(h.ready)
		defer done()
		h.err = e.runSlotHost(ctx, impl, h)
	}()
	return h
}

func (e *Environment) runSlotHost(ctx context.Context, impl hostable, h *slotHost) error {
	if h.co != nil {
		err := h.co.Err()
		if err == nil {
			return e.coHosted(ctx, impl, h)
		}
		e.opts.Logf("the container the runs share did not start (%v): this run starts its own", err)
		// Numbered as the run's own again: a later balancer of the run
		// takes its numbers after runFirst's, never the same.
		h.co, h.first = nil, h.runFirst
	}
	mount := e.direct // the engine is on this machine: slots/ can be a folder of ours
	err := e.startSlotHostContainer(ctx, impl, h, mount)
	if !mount || ctx.Err() != nil {
		return err
	}
	// An engine that sees another file system (this program in a container
	// of its own, say) mounts an empty folder of its own: the balancer finds
	// no configuration and exits, or (a folder of the same name there)
	// runs without this run's slots. Start it again without the mounts,
	// its configuration copied in.
	switch {
	case err == nil && e.seesSlots(ctx, h):
		return nil
	case err == nil:
		e.opts.Logf("the shared balancer does not see this machine's folder %s as its slots (the engine mounted another): "+
			"it starts again, and its configurations are copied in instead", h.dir)
	case h.c != nil && exited(ctx, h.c):
		e.opts.Logf("the shared balancer exited at once with its configuration in this machine's folder %s "+
			"(an engine that mounts another folder does that): it starts again with its configuration copied in", filepath.Dir(h.dir))
	default:
		return err
	}
	if h.c != nil {
		if err := terminateAll(ctx, []*testcontainers.DockerContainer{h.c}); err != nil {
			return err
		}
	}
	h.c = nil
	h.removeDir()
	h.dir, h.ownDir, h.conf, h.ctl, h.removeDir, h.part = "", "", "", "", nil, "" // copied into: not kept
	return e.startSlotHostContainer(ctx, impl, h, false)
}

// exited says whether a container has stopped running.
func exited(ctx context.Context, c *testcontainers.DockerContainer) bool {
	st, err := c.State(ctx)
	return err == nil && !st.Running
}

// seesSlots says whether the balancer sees the folder of ours it mounts,
// by the marker this run wrote there.
func (e *Environment) seesSlots(ctx context.Context, h *slotHost) bool {
	_, err := e.docker.ContainerStatPath(ctx, h.c.GetContainerID(), client.ContainerStatPathOptions{Path: lb.ConfDir + "/" + seenMarker})
	return err == nil
}

// startSlotHostContainer starts the shared balancer's container, with
// slots/ a folder of this machine's when mount is set, else inside it.
func (e *Environment) startSlotHostContainer(ctx context.Context, impl hostable, h *slotHost, mount bool) error {
	files := map[string][]byte{}
	slotFiles := map[string][]byte{slotMarker: []byte("slots of run " + e.RunID + "\n")}
	for name, data := range impl.HostFiles() {
		if strings.HasPrefix(name, "slots/") {
			slotFiles[name] = data
			continue
		}
		files[name] = data
	}
	if mount {
		var dir string
		var remove func()
		var err error
		if h.part != "" {
			dir, err = e.warmHosts.hostDir(h.part)
			remove = func() { os.RemoveAll(dir) }
		} else {
			dir, remove, err = TempDir()
		}
		if err != nil {
			return err
		}
		// One folder of ours: slots/ mounted read-only, own/ beside it
		// read-write (a process of its own writes its pid file there).
		h.dir, h.ownDir, h.removeDir = filepath.Join(dir, "slots"), filepath.Join(dir, "own"), remove
		os.RemoveAll(filepath.Join(dir, stageDir)) // what a killed run was writing
		if err := os.MkdirAll(h.ownDir, 0o755); err != nil {
			return fmt.Errorf("make the shared balancer's folder own/: %w", err)
		}
		if err := writeSlotFiles(h.dir, slotFiles); err != nil {
			return err
		}
		// The main configuration too, in conf/, mounted as the folder
		// itself (read-only; slots/ and own/ are mounted over it): copying
		// it in cost an unpacking process of the engine's, about 50 ms
		// before the balancer could start and as much CPU.
		h.conf = filepath.Join(dir, "conf")
		if h.ctl, err = makeCtl(h.ownDir); err != nil {
			return err
		}
		files[ctlScript] = []byte(ctlScriptText)
		if err := writeConf(h.conf, files); err != nil {
			return err
		}
		files = nil
	} else {
		maps.Copy(files, slotFiles)
	}
	labels := e.labels()
	if h.part != "" {
		labels = e.warmHosts.labels()
	}
	cmd := impl.HostCommand()
	if h.ctl != "" {
		cmd = ctlCommand(cmd)
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithCmd(cmd...),
		testcontainers.WithLabels(labels),
		testcontainers.WithLabels(map[string]string{"org.mtlsconform.lbconfig": "shared"}),
		e.onNetwork(nil),
		e.withConfFiles(files),
		testcontainers.WithWaitStrategyAndDeadline(e.opts.Timeouts.ContainerReady, readyLog(impl.HostReadyLog())),
	}
	if mount {
		opts = append(opts, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Binds = append(hc.Binds, h.conf+":"+lb.ConfDir+":ro", h.dir+":"+lb.ConfDir+"/slots:ro", h.ownDir+":"+lb.ConfDir+"/own")
		}))
	}
	if !e.direct {
		for i := range h.size {
			port := strconv.Itoa(slotBasePort+h.first+i) + "/tcp"
			plain := strconv.Itoa(slotBasePort+h.first+i+lb.PlainPortOffset) + "/tcp"
			opts = append(opts, testcontainers.WithExposedPorts(port, plain), loopbackOnly(port), loopbackOnly(plain))
		}
	}
	if h.part != "" && mount {
		name := e.warmHosts.name(h.part)
		if err := e.findKept(ctx, h, name); err != nil {
			return err
		}
		opts = append(opts, testcontainers.WithReuseByName(name))
	}
	c, err := testcontainers.Run(context.WithoutCancel(ctx), e.opts.Image, opts...)
	if c != nil {
		if h.kept {
			e.reused.Add(1)
		} else {
			e.started.Add(1)
		}
		h.c = c // Close removes it, after waiting for this start
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("start the shared load balancer (%s): %w%s", e.opts.Image, err, containerLogs(ctx, c))
	}
	if h.part != "" && mount {
		replace, err := e.warmMounts(ctx, h)
		if err != nil {
			return err
		}
		if replace {
			// The kept balancer mounts a folder that is no longer this one
			// (removed and made anew meanwhile): a new one mounts it as it is.
			if err := terminateAll(ctx, []*testcontainers.DockerContainer{h.c}); err != nil {
				return err
			}
			h.c, h.kept = nil, false
			return e.startSlotHostContainer(ctx, impl, h, mount)
		}
	}
	if e.direct {
		if h.ip, err = e.networkIP(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// warmMounts checks that a kept balancer mounts the folder this run
// writes (replace is true when it does not), and marks a new one's folder
// with its container: the engine's own view of a mounted path follows the
// path, not the folder the container was given, so only a mark kept in
// the folder itself tells a folder removed and made anew.
//
// A kept balancer whose last run never ended (killed) may still run that
// run's processes of their own: they are stopped, or the balancer is
// replaced.
func (e *Environment) warmMounts(ctx context.Context, h *slotHost) (replace bool, err error) {
	mark := filepath.Join(filepath.Dir(h.dir), "container")
	id := h.c.GetContainerID()
	dirty, err := reserveSlots(h)
	if err != nil {
		return false, err
	}
	if !h.kept {
		return false, os.WriteFile(mark, []byte(id), 0o600)
	}
	if got, err := os.ReadFile(mark); err != nil || string(got) != id {
		return true, nil
	}
	if dirty {
		if out, ran := run(ctx, h, stopOwnCommand); !ran || out != "" {
			e.opts.Logf("the kept %s balancer of a run that never ended is replaced: what it left running did not stop (%s)", e.opts.Implementation.Name(), out)
			return true, nil
		}
	}
	return false, nil
}

// slotMarker is a file every shared balancer's slots/ holds, by which a
// mounted folder is known to be the one this program writes; seenMarker
// is the one looked for (another in the test of an engine that mounts a
// folder of its own).
const slotMarker = "slots/.mtlsconform-run"

var seenMarker = slotMarker

// writeSlotFiles writes files (names under slots/) into dir, the folder a
// shared balancer mounts as its slots/, so that the balancer, whenever it
// reads it, sees each slot whole or not at all: a new slot's folder is
// written beside dir and renamed into it, then each file outside a
// folder (HAProxy's slots/<id>.cfg, which names its folder) is written
// beside its place and renamed onto it.
//
// A reload asked for earlier can still be pending while a batch is
// written (a signal sent again while the balancer was slow is taken after
// the reload it was meant for): Apache httpd, reading a slot whose CRL was
// not written yet, refused the configuration and exited, and took every
// slot of the run with it.
func writeSlotFiles(dir string, files map[string][]byte) error {
	fail := func(err error) error { return fmt.Errorf("write the shared balancer's configuration: %w", err) }
	stage := filepath.Join(filepath.Dir(dir), stageDir)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	slots := map[string]map[string][]byte{} // slot folder -> its files, by name within it
	var loose []string
	for name, data := range files {
		folder, inner, ok := strings.Cut(strings.TrimPrefix(name, "slots/"), "/")
		if !ok {
			loose = append(loose, name)
			continue
		}
		if slots[folder] == nil {
			slots[folder] = map[string][]byte{}
		}
		slots[folder][inner] = data
	}
	for folder, inner := range slots {
		target := filepath.Join(dir, folder)
		if _, err := os.Lstat(target); err == nil {
			// Files added to a folder already there (no slot is written
			// twice today): each file whole, in place.
			for name, data := range inner {
				path := filepath.Join(target, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					return fail(err)
				}
				if err := writeRenamed(stage, path, data, fileMode("slots/"+folder+"/"+name)); err != nil {
					return fail(err)
				}
			}
			continue
		}
		tmp, err := os.MkdirTemp(stage, folder+"-")
		if err != nil {
			return fail(err)
		}
		err = fillFolder(tmp, folder, inner)
		if err == nil {
			err = os.Rename(tmp, target)
		}
		if err != nil {
			os.RemoveAll(tmp)
			return fail(err)
		}
	}
	for _, name := range loose {
		if err := writeRenamed(stage, filepath.Join(dir, strings.TrimPrefix(name, "slots/")), files[name], fileMode(name)); err != nil {
			return fail(err)
		}
	}
	return nil
}

// writeConfFolder writes a shared balancer's main files (names under
// lb.ConfDir) into conf, with the folders slots/ and own/ are mounted on;
// a kept balancer reading them meanwhile sees each file whole.
func writeConfFolder(conf string, files map[string][]byte) error {
	fail := func(err error) error { return fmt.Errorf("write the shared balancer's main configuration: %w", err) }
	stage := filepath.Join(filepath.Dir(conf), stageDir)
	for _, d := range []string{stage, filepath.Join(conf, "slots"), filepath.Join(conf, "own")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
	}
	for name, data := range files {
		path := filepath.Join(conf, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fail(err)
		}
		if err := writeRenamed(stage, path, data, fileMode(name)); err != nil {
			return fail(err)
		}
	}
	return nil
}

var writeConf = writeConfFolder // a test plays an engine that mounts an empty folder

// stageDir is where writeSlotFiles makes files and folders before they
// are renamed into slots/: beside it, on the same file system.
const stageDir = ".stage"

// fillFolder writes a slot's files (names within its folder) into dir,
// readable by the balancer whatever user it runs as.
func fillFolder(dir, folder string, files map[string][]byte) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	for inner, data := range files {
		path := filepath.Join(dir, inner)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, fileMode("slots/"+folder+"/"+inner)); err != nil {
			return err
		}
	}
	return nil
}

// writeRenamed writes data to path through a file in stage renamed onto
// it: a reader sees the old file or the new one, never half of one. Not
// pki.WriteFileAtomic: that one syncs each file to disk (a kept
// balancer's folder is on disk, and slots are written on a run's hot
// path, for a balancer that needs no durability) and stages beside path,
// inside the folder the balancer reads.
func writeRenamed(stage, path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(stage, filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), mode)); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// copyIn copies files (names under /etc/mtlsconform) into the shared
// balancer through the engine, in one archive. Unlike writeSlotFiles it
// cannot make a slot appear whole: the engine unpacks file after file, and
// a reload still pending then may read a slot half-written (this path is
// only taken where the engine does not see this machine's folders).
func (e *Environment) copyIn(ctx context.Context, h *slotHost, files map[string][]byte) error {
	if err := e.copyInto(ctx, h.c.GetContainerID(), files); err != nil {
		return fmt.Errorf("copy the configuration into the shared load balancer: %w", err)
	}
	return nil
}

// writeOwn writes the files of processes of their own (names under
// own/) into the shared balancer: into the folder of ours it mounts, or
// through the engine. Files are rewritten in place, as a team rewrites
// its CRL: only the process's own reload reads them.
func (e *Environment) writeOwn(ctx context.Context, h *slotHost, files map[string][]byte) error {
	if h.ownDir == "" {
		return e.copyInto(ctx, h.c.GetContainerID(), files)
	}
	for name, data := range h.moved(files) {
		rel, ok := strings.CutPrefix(name, "own/")
		if !ok {
			return fmt.Errorf("%s is not a file of a process of its own (own/…)", name)
		}
		path := filepath.Join(h.ownDir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, fileMode(name)); err != nil {
			return err
		}
	}
	return nil
}

// copyInto writes files under lb.ConfDir of a container, running or just
// created, in one archive: the engine unpacks each archive in a process of
// its own (about 0.1–0.3 s of CPU under fuse-overlayfs), so one archive
// per container rather than one per file.
func (e *Environment) copyInto(ctx context.Context, containerID string, files map[string][]byte) error {
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	if err := writeTar(tw, strings.TrimPrefix(lb.ConfDir, "/")+"/", files); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	// Into "/", with lb.ConfDir in every name: the engine makes the
	// folders an image lacks.
	_, err := e.docker.CopyToContainer(ctx, containerID, client.CopyToContainerOptions{
		DestinationPath: "/", Content: &archive,
	})
	return err
}

// withConfFiles copies files under lb.ConfDir once the container is
// created, before it starts. testcontainers' WithFiles sends one archive
// per file: a Traffic Server configuration of 12 files cost 12 unpacking
// processes.
func (e *Environment) withConfFiles(files map[string][]byte) testcontainers.CustomizeRequestOption {
	return testcontainers.WithAdditionalLifecycleHooks(testcontainers.ContainerLifecycleHooks{
		PostCreates: []testcontainers.ContainerHook{func(ctx context.Context, c testcontainers.Container) error {
			if len(files) == 0 {
				return nil
			}
			if err := e.copyInto(ctx, c.GetContainerID(), files); err != nil {
				return fmt.Errorf("copy the configuration into the container: %w", err)
			}
			return nil
		}},
	})
}

// slot serves the rendered configuration r in a slot of a shared
// balancer: a new port in the running process, brought up by a reload
// and proven by a TLS handshake with the run's server certificate.
// Reloads are batched: callers that come while one runs share the next.
// A configuration the balancer refuses retires that balancer; the others
// of its batch are then served again, each on its own, elsewhere, so that
// a refusal is only ever reported to the configuration it belongs to.
func (e *Environment) slot(ctx context.Context, impl lb.Multiplexed, cfg lb.Config, r lb.Rendered) (*LoadBalancer, error) {
	alone := false
	for attempt := 1; ; attempt++ {
		bal, err := e.slotOnce(ctx, impl, cfg, r, alone)
		if !errors.Is(err, errSlotLost) || attempt == 4 {
			return bal, err
		}
		alone = true
	}
}

func slotID(n int) string { return fmt.Sprintf("s%02d", n) }

// ownSlot serves a configuration changed in place (lb.Config.Instance, a
// new CRL delivered: C23) as a balancer process of its own inside a shared
// balancer's container, where the implementation can run one
// (lb.Separate): no other configuration's reload reads its files.
func (e *Environment) ownSlot(ctx context.Context, impl lb.Multiplexed, cfg lb.Config, r lb.Rendered) (*LoadBalancer, error) {
	sep, ok := impl.(lb.Separate)
	if !ok {
		return nil, contract.Unsupported("%s cannot run a configuration as a process of its own beside the shared one, which a configuration changed in place needs", impl.Name())
	}
	return e.separateSlot(ctx, sep, cfg, r)
}

// separateSlot serves a configuration changed in place as a balancer
// process of its own inside a shared balancer's container, on a slot's
// port: the shared process's reloads never read its files.
func (e *Environment) separateSlot(ctx context.Context, impl lb.Separate, cfg lb.Config, r lb.Rendered) (*LoadBalancer, error) {
	h, n, err := e.slotFor(ctx, impl)
	if err != nil {
		return nil, err
	}
	id, port := slotID(h.first+n), slotBasePort+h.first+n
	slot, err := impl.Slot(r, id, port)
	if err != nil {
		return nil, err
	}
	if err := e.pointAtBackend(ctx, slot); err != nil {
		return nil, err
	}
	files, start, reload, err := impl.Separate(slot, id)
	if err != nil {
		return nil, err
	}
	return e.startOwn(ctx, impl.Name(), h, own{id: id, port: port, files: files, start: start, reload: reload}, cfg, r)
}

// processSlot serves a configuration of an implementation that runs each
// as a process of its own (lb.Processes) in its shared container.
func (e *Environment) processSlot(ctx context.Context, impl lb.Processes, cfg lb.Config, r lb.Rendered) (*LoadBalancer, error) {
	h, n, err := e.slotFor(ctx, processHost{impl})
	if err != nil {
		return nil, err
	}
	id, port := slotID(h.first+n), slotBasePort+h.first+n
	r.Files = maps.Clone(r.Files)
	if err := e.pointAtBackend(ctx, r.Files); err != nil {
		return nil, err
	}
	files, start, err := impl.Process(r, id, port)
	if err != nil {
		return nil, err
	}
	return e.startOwn(ctx, impl.Name(), h, own{id: id, port: port, files: files, start: start}, cfg, r)
}

// own is a balancer process of its own: its slot, files and commands.
type own struct {
	id            string
	port          int
	files         map[string][]byte
	start, reload []string
}

// startOwn writes a process's files into the shared container, starts it,
// and waits for it to serve TLS on its port.
func (e *Environment) startOwn(ctx context.Context, name string, h *slotHost, p own, cfg lb.Config, r lb.Rendered) (*LoadBalancer, error) {
	if err := e.writeOwn(ctx, h, p.files); err != nil {
		return nil, fmt.Errorf("copy a configuration of its own into the shared load balancer: %w", err)
	}
	e.mu.Lock()
	h.owns++ // counted before it starts: one that half started is stopped too
	e.mu.Unlock()
	if out, ran := run(ctx, h, p.start); !ran || out != "" {
		// The shared balancer's log says why, where its container stopped.
		return nil, fmt.Errorf("start the %s process of a configuration of its own (%s): %s%s", name, strings.Join(p.start, " "), out, e.hostLogs(ctx, h))
	}
	bal := &LoadBalancer{Config: cfg, ConfigKey: r.Key, Rendered: r.Config, container: h.c, host: h, slot: p.id, separate: p.reload}
	var err error
	if bal.URL, err = e.slotURL(ctx, h, p.port, "https"); err != nil {
		return nil, err
	}
	if bal.PlainURL, err = e.slotURL(ctx, h, p.port+lb.PlainPortOffset, "http"); err != nil {
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, e.opts.Timeouts.ContainerReady)
	defer cancel()
	if err := e.waitTLS(wait, bal.URL); err != nil {
		return nil, fmt.Errorf("the %s process of a configuration of its own never served it: %w%s", name, err, e.hostLogs(ctx, h))
	}
	// A process opens its listeners one after the other: Traffic Server's
	// plain-HTTP port was seen refusing a C19 call 10 ms after its TLS
	// port served.
	if err := e.waitListening(wait, bal.PlainURL); err != nil {
		return nil, fmt.Errorf("the %s process of a configuration of its own served TLS but never opened its plain-HTTP port: %w%s", name, err, e.hostLogs(ctx, h))
	}
	return bal, nil
}

// hostable is what starting a shared container asks of an
// implementation: a multiplexed one's, or, through processHost, that of one
// whose configurations are processes of their own.
type hostable interface {
	HostFiles() map[string][]byte
	HostCommand() []string
	HostReadyLog() string
}

// processHost is an lb.Processes implementation's shared container: its
// command and ready line, and no files until a process brings its own.
type processHost struct{ lb.Processes }

func (processHost) HostFiles() map[string][]byte { return map[string][]byte{} }

// hostOf is the shared container a run of impl starts, if it starts one.
func hostOf(impl lb.Implementation) (hostable, bool) {
	switch i := impl.(type) {
	case lb.Multiplexed:
		return i, true
	case lb.Processes:
		return processHost{i}, true
	}
	return nil, false
}

// errSlotLost: the slot went with a balancer retired over another
// configuration; the request is served again.
var errSlotLost = errors.New("the slot went with a shared balancer retired over another configuration")

func (e *Environment) slotOnce(ctx context.Context, impl lb.Multiplexed, cfg lb.Config, r lb.Rendered, alone bool) (*LoadBalancer, error) {
	h, n, err := e.slotFor(ctx, impl)
	if err != nil {
		return nil, err
	}
	id := slotID(h.first + n)
	port := slotBasePort + h.first + n
	files, err := impl.Slot(r, id, port)
	if err != nil {
		return nil, err
	}
	if err := e.pointAtBackend(ctx, files); err != nil {
		return nil, err
	}
	req := &slotRequest{id: id, port: port, files: files, done: make(chan struct{}),
		lb: &LoadBalancer{Config: cfg, ConfigKey: r.Key, Rendered: r.Config, container: h.c, host: h, slot: id}}
	if req.lb.URL, err = e.slotURL(ctx, h, port, "https"); err != nil {
		return nil, err
	}
	if req.lb.PlainURL, err = e.slotURL(ctx, h, port+lb.PlainPortOffset, "http"); err != nil {
		return nil, err
	}
	batch := []*slotRequest{req}
	if !alone {
		h.pmu.Lock()
		h.pending = append(h.pending, req)
		h.pmu.Unlock()
	}
	h.reload.Lock()
	defer h.reload.Unlock()
	if !alone {
		select {
		case <-req.done: // a reload that ran while this one waited took it along
			return req.lb, req.err
		default:
		}
		h.pmu.Lock()
		batch, h.pending = h.pending, nil
		h.pmu.Unlock()
	}
	e.reloadWith(impl, h, batch)
	for _, b := range batch {
		close(b.done)
	}
	return req.lb, req.err
}

// slotFor hands out the next free slot, starting a shared balancer when
// none has one left.
func (e *Environment) slotFor(ctx context.Context, impl hostable) (*slotHost, int, error) {
	e.mu.Lock()
	var h *slotHost
	for _, cand := range e.slotHosts {
		if cand.handed < cand.size && cand.broken == nil {
			h = cand
			break
		}
	}
	if h == nil {
		h = e.startSlotHost(ctx, impl)
	}
	n := h.handed
	h.handed++
	e.mu.Unlock()
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if h.err != nil {
		return nil, 0, h.err
	}
	return h, n, nil
}

func (e *Environment) slotURL(ctx context.Context, h *slotHost, port int, scheme string) (string, error) {
	if e.direct {
		return fmt.Sprintf("%s://%s:%d", scheme, h.ip, port), nil
	}
	return e.hostURL(ctx, h.c, strconv.Itoa(port)+"/tcp", scheme)
}

// reloadWith copies the batch's slots into the shared balancer, reloads
// it once, waits for every new slot to serve TLS, and sets each request's
// error. It runs to its end whatever becomes of the caller that leads the
// batch (the others wait for it), bounded by the readiness timeout and
// the end of the run.
func (e *Environment) reloadWith(impl lb.Multiplexed, h *slotHost, batch []*slotRequest) {
	ctx, cancel := context.WithTimeout(e.alive, e.opts.Timeouts.ContainerReady)
	defer cancel()
	setAll := func(err error) {
		for _, req := range batch {
			req.err = err
		}
	}
	e.mu.Lock()
	broken := h.broken
	e.mu.Unlock()
	if broken != nil {
		setAll(errSlotLost)
		return
	}
	files := map[string][]byte{}
	for _, req := range batch {
		maps.Copy(files, req.files)
	}
	write := e.copyIn
	if h.dir != "" {
		write = func(_ context.Context, h *slotHost, files map[string][]byte) error {
			return writeSlotFiles(h.dir, h.moved(files))
		}
	}
	if err := write(ctx, h, files); err != nil {
		setAll(err)
		return
	}
	if err := e.reload(ctx, impl.Reload(), h); err != nil {
		gone, _ := e.hostExited(ctx, h)
		e.refused(h, batch, err, gone)
		return
	}
	grace, cancelGrace := context.WithTimeout(ctx, slotReloadGrace)
	defer cancelGrace()
	served := make(chan struct{})
	go func() {
		defer close(served)
		// One reload serves the whole batch: only its first slot is polled
		// (a TCP connection every 10 ms each was a fifth of the harness's
		// CPU in a matrix), the others are looked at once it serves, or
		// once the grace is over, and polled on their own only if not yet.
		batch[0].err = e.waitTLS(grace, batch[0].lb.URL)
		// The first's wait may have used the grace up: the others get one
		// of their own.
		rest, cancelRest := context.WithTimeout(ctx, slotReloadGrace)
		defer cancelRest()
		var wg sync.WaitGroup
		for _, req := range batch[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req.err = e.waitTLS(rest, req.lb.URL)
			}()
		}
		wg.Wait()
	}()
	// A signal that comes while the balancer is still busy with the last
	// reload can be lost (HAProxy's master re-executing itself) or wait
	// for it (nginx): while nothing serves, signal again; a reload more
	// is harmless.
	sig := impl.Reload().Signal
	e.resignal(ctx, h, sig, served)
	var failed []*slotRequest
	for _, req := range batch {
		if req.err != nil {
			failed = append(failed, req)
		}
	}
	if len(failed) == 0 {
		return
	}
	// A balancer that exited took every slot it served with it.
	if gone, how := e.hostExited(ctx, h); gone {
		e.refused(h, batch, fmt.Errorf("the shared %s exited (%s) when it reloaded with this configuration: "+
			"it cannot load it; a balancer started for it alone would not either%s", impl.Name(), how, e.hostLogs(ctx, h)), true)
		return
	}
	// The balancer kept its old configuration, or is slow: ask it why.
	if out, ran := e.configTest(ctx, impl, h); ran && out != "" {
		e.refused(h, batch, fmt.Errorf("the load balancer refused the configuration (its own configuration test: %s)", out), false)
		return
	}
	// The configuration is sound: give the slow ones the rest of the
	// readiness timeout, still signalling while none serves (a balancer
	// slowed by a loaded machine may have lost every signal so far).
	slow := make(chan struct{})
	go func() {
		defer close(slow)
		for _, req := range failed {
			if err := e.waitTLS(ctx, req.lb.URL); err != nil {
				req.err = fmt.Errorf("the shared %s never served the configuration (slot %s) after its reload: %w%s", impl.Name(), req.id, err, e.hostLogs(ctx, h))
			} else {
				req.err = nil
			}
		}
	}()
	e.resignal(ctx, h, sig, slow)
}

// resignal sends a shared balancer its reload signal again while done is
// open, after slotResignal and then at doubling intervals up to
// slotResignalMax, and returns once done closes. Without a signal (a
// reload by command) it only waits.
func (e *Environment) resignal(ctx context.Context, h *slotHost, sig string, done <-chan struct{}) {
	if sig == "" {
		<-done
		return
	}
	every := slotResignal
	tick := time.NewTimer(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			e.signal(ctx, h, sig)
			every = min(2*every, slotResignalMax)
			tick.Reset(every)
		}
	}
}

// refused retires a balancer that would not take a batch: no new slots go
// to it. A batch of one gets the refusal; a larger one cannot say whose
// it is, so each of its requests is served again on its own. A balancer
// that exited has lost the configurations it served before too: they are
// forgotten, and served again when next asked for.
func (e *Environment) refused(h *slotHost, batch []*slotRequest, err error, exited bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h.broken = err
	if exited {
		for key, s := range e.lbs {
			select {
			case <-s.ready:
				if s.err == nil && s.lb != nil && s.lb.host == h {
					delete(e.lbs, key)
				}
			default:
			}
		}
	}
	for _, req := range batch {
		if len(batch) == 1 {
			req.err = err
		} else {
			req.err = errSlotLost
		}
	}
}

func (e *Environment) reload(ctx context.Context, r lb.Reload, h *slotHost) error {
	if r.Signal != "" {
		if err := e.signal(ctx, h, r.Signal); err != nil {
			return fmt.Errorf("reload the shared load balancer: %w", err)
		}
		return nil
	}
	out, ran := run(ctx, h, r.Exec)
	if !ran {
		return fmt.Errorf("reload the shared load balancer: %s", out)
	}
	if out != "" {
		return fmt.Errorf("the load balancer refused the configuration (%s, %s)", strings.Join(r.Exec, " "), out)
	}
	return nil
}

// configTest runs the implementation's configuration test in the shared
// balancer: what it printed when it failed, and whether it could run at
// all (a test that could not run says nothing about the configuration).
func (e *Environment) configTest(ctx context.Context, impl lb.Multiplexed, h *slotHost) (string, bool) {
	out, ran := run(ctx, h, impl.ConfigTest())
	if !ran {
		return "", false
	}
	return out, true
}

// run runs a command in the shared balancer. A command that failed gives
// its exit status and what it printed; one that could not run gives why,
// and ran false; one that exited 0 gives "".
//
// Through the balancer's control pipe where it has one (ctl.go), else
// through the engine.
func run(ctx context.Context, h *slotHost, cmd []string) (out string, ran bool) {
	cmd = h.movedArgs(cmd)
	if h.ctl != "" {
		code, printed, err := ctlRun(ctx, h.ctl, cmd)
		switch {
		case err == nil && code == 0:
			return "", true
		case err == nil:
			return fmt.Sprintf("exit status %d: %s", code, strings.TrimSpace(printed)), true
		case !errors.Is(err, errNoCtl):
			return err.Error(), false
		}
	}
	code, rd, err := h.c.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return err.Error(), false
	}
	if code == 0 {
		return "", true
	}
	b, _ := io.ReadAll(io.LimitReader(rd, 4096))
	return fmt.Sprintf("exit status %d: %s", code, strings.TrimSpace(string(b))), true
}

// writeTar writes files with names under prefix ("" or ending in "/"),
// with a header for every folder of theirs below it.
func writeTar(tw *tar.Writer, prefix string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, name := range names {
		var missing []string // parents first
		for d := parentDir(name); d != "" && !dirs[d]; d = parentDir(d) {
			dirs[d] = true
			missing = append([]string{d}, missing...)
		}
		for _, d := range missing {
			if err := tw.WriteHeader(&tar.Header{Name: prefix + d + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: prefix + name, Mode: int64(fileMode(name)), Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(files[name]); err != nil {
			return err
		}
	}
	return nil
}

func parentDir(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i <= 0 {
		return ""
	}
	return name[:i]
}

// DeliverCRL gives a running configuration a new CRL bundle the way the
// balancers' documentation says (C23): its CRL file rewritten in place,
// then its balancer reloaded. The configuration runs as a process of its
// own (lb.Config.Instance, lb.Separate), so no other configuration's
// reload reads the new file first. It says how, for the scenario's
// evidence; a second delivery of the same bundle is harmless.
//
// Without reload (a deliberate break the self-test uses) the file is
// rewritten and the balancer left as it runs.
func (e *Environment) DeliverCRL(ctx context.Context, bal *LoadBalancer, crl []byte, reload bool) (string, error) {
	if bal.separate == nil {
		return "", contract.Unsupported("a new CRL is delivered to a configuration running as a process of its own; %s runs this one with others", e.opts.Implementation.Name())
	}
	if len(bal.Config.CRL) == 0 {
		return "", errors.New("the configuration has no CRL bundle to replace")
	}
	name := lb.OwnDir(bal.slot) + "/crl.pem"
	if err := e.writeOwn(ctx, bal.host, map[string][]byte{name: crl}); err != nil {
		return "", fmt.Errorf("rewrite %s: %w", name, err)
	}
	impl := e.opts.Implementation
	if !reload {
		return fmt.Sprintf("%s/%s rewritten in place; %s not reloaded", bal.host.confDir(), name, impl.Name()), nil
	}
	if out, ran := run(ctx, bal.host, bal.separate); !ran || out != "" {
		return "", fmt.Errorf("reload the load balancer (%s): %s", strings.Join(bal.separate, " "), out)
	}
	return fmt.Sprintf("%s/%s rewritten in place, then %s reloaded (%s)", bal.host.confDir(), name, impl.Name(), strings.Join(bal.host.movedArgs(bal.separate), " ")), nil
}
