package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"mtlsconform/fixtures/productapi"
	"mtlsconform/lb"
)

// Warm containers (Options.Warm): a developer's repeated local runs keep
// the backend and the shared balancers running between runs, and the next
// run with the same implementation, images and harness finds them by name
// and gives the balancer new slots instead of starting containers. They
// carry LabelWarm instead of a run and an owner, so neither the end of a
// run nor the sweep of dead runs removes them; a sweep removes those idle
// for longer than WarmIdle, and `mtlsconform sweep` all that no run uses.
//
// A unit (the backend, or one implementation's balancers) is locked while
// a run uses it: a balancer exclusively (one run gives it slots at a
// time), the backend shared (runs tell their requests apart by their ids).
// A run that finds a balancer's unit taken starts containers of its own,
// as without Warm.
const (
	LabelWarm = "org.mtlsconform.warm"
	// LabelWarmDir names the unit's folder, whose lock and last-used mark
	// a sweep judges it by, whichever cache folder the sweeping run uses.
	LabelWarmDir = "org.mtlsconform.warm-dir"
	// WarmIdle is how long kept containers wait for the next run.
	WarmIdle = 30 * time.Minute
)

// warmUnit is a held lock on kept containers, and their folder.
type warmUnit struct {
	key  string
	dir  string // warmRoot()/key: the lock, the last-used mark, the balancers' slots/ and own/
	lock *os.File
}

func warmRoot() string { return filepath.Join(cacheDir(), "warm") }

// warmKey names a unit by everything that makes its containers what they
// are: a change of image, harness or products makes another unit; so
// does another cache folder (another user of the engine), whose runs
// take other locks and must not find these containers.
func warmKey(parts ...string) string {
	h := sha256.New()
	for _, p := range append([]string{warmRoot()}, parts...) {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// backendWarmKey is the kept backend's unit: its image and products.
func backendWarmKey(ref string, products []productapi.Product) string {
	return warmKey("backend", ref, string(productapi.ProductsJSON(products)))
}

// hostWarmKey is an implementation's kept balancers' unit: its image (by
// id: a rebuilt image is another), its shared configuration and command.
func hostWarmKey(impl hostable, name, imageID string) string {
	parts := []string{"balancer", name, imageID, impl.HostReadyLog()}
	parts = append(parts, impl.HostCommand()...)
	files := impl.HostFiles()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, n, string(files[n]))
	}
	return warmKey(parts...)
}

// takeWarm locks the unit named key, without waiting: ok is false when
// another run holds it (exclusive) or a sweep is removing it.
func takeWarm(key string, exclusive bool) (u *warmUnit, ok bool, err error) {
	dir := filepath.Join(warmRoot(), key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("keep containers warm: %w (is the cache folder %s writable?)", err, warmRoot())
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	f, err := tryLock(filepath.Join(dir, "lock"), how)
	if err != nil {
		return nil, false, fmt.Errorf("keep containers warm: %w", err)
	}
	if f == nil {
		return nil, false, nil
	}
	return &warmUnit{key: key, dir: dir, lock: f}, true, nil
}

// tryLock takes a lock on the file at path (made when missing) without
// waiting: nil, no error, when another holds it, or when the file was
// removed meanwhile (a sweep removes a unit's folder while it holds its
// lock, and a lock on a removed file locks nothing).
func tryLock(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, err
	}
	st, err := os.Stat(path)
	fst, ferr := f.Stat()
	if err != nil || ferr != nil || !os.SameFile(st, fst) {
		unlock(f)
		return nil, nil
	}
	return f, nil
}

// unlock lets go of a lock tryLock took.
func unlock(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

// name is the container name of one of the unit's parts.
func (u *warmUnit) name(part string) string { return "mtlsconform-warm-" + u.key + "-" + part }

// release marks the unit used now and unlocks it.
func (u *warmUnit) release() {
	if u == nil {
		return
	}
	now := time.Now()
	mark := filepath.Join(u.dir, "last-used")
	if f, err := os.OpenFile(mark, os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		f.Close()
		os.Chtimes(mark, now, now)
	}
	unlock(u.lock)
}

func (u *warmUnit) labels() map[string]string {
	return map[string]string{LabelManaged: "true", LabelWarm: u.key, LabelWarmDir: u.dir}
}

// warmContainer answers the id of the kept container of this name if it
// runs; one that exists but stopped (the engine restarted) is removed, so
// that it is made anew rather than started with what it held.
func warmContainer(ctx context.Context, cli *testcontainers.DockerClient, name string) (string, error) {
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("name", "^/?"+name+"$")})
	if err != nil {
		return "", fmt.Errorf("look for the kept container %s: %w", name, err)
	}
	for _, c := range list.Items {
		switch c.State {
		case "running":
			return c.ID, nil
		case "exited", "dead":
			if err := removeContainer(ctx, cli, c.ID); err != nil {
				return "", fmt.Errorf("remove the stopped kept container %s: %w", name, err)
			}
		}
		// Another run is making it (created, not yet started): the reuse
		// by name waits for it.
	}
	return "", nil
}

// warmSlotLimit bounds a kept balancer's slot numbers: its TLS ports stay
// below the plain ports of its first slots (lb.PlainPortOffset above).
const warmSlotLimit = lb.PlainPortOffset

// findKept looks for the kept balancer of this name and sets where its
// slots go on: a port that served an earlier run's configuration is never
// given another (the old workers of a reload may still accept on it), so
// a kept balancer's slots are numbered on from where the last run left
// them, and one whose ports are used up is replaced by a new one.
func (e *Environment) findKept(ctx context.Context, h *slotHost, name string) error {
	id, err := warmContainer(ctx, e.docker, name)
	if err != nil {
		return err
	}
	// A new one numbers as any balancer of the run does (across the run:
	// one that exits may hand its address to the next); a kept one goes on
	// from its mark, and never below the run's numbers.
	h.kept, h.first = id != "", h.runFirst
	if !h.kept {
		return nil
	}
	next, err := os.ReadFile(filepath.Join(filepath.Dir(h.dir), "next-slot"))
	n := 0
	if err == nil {
		n, err = strconv.Atoi(strings.TrimSpace(string(next)))
	}
	h.first = max(n, h.runFirst)
	if err != nil || n < 0 || h.first+h.size > warmSlotLimit {
		if err := removeContainer(ctx, e.docker, id); err != nil {
			return fmt.Errorf("replace the kept balancer %s: %w", name, err)
		}
		h.kept, h.first = false, h.runFirst
	}
	return nil
}

// reserveSlots notes, before any slot is handed out, that the run may use
// all of its balancer's: a run killed before it ends leaves its ports
// behind the next run's, and its mark in use, by which the next run knows
// to stop what it left running (dirty).
func reserveSlots(h *slotHost) (dirty bool, err error) {
	dir := filepath.Dir(h.dir)
	_, inUse := os.Stat(filepath.Join(dir, "in-use"))
	if err := os.WriteFile(filepath.Join(dir, "next-slot"), []byte(strconv.Itoa(h.first+h.size)+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("note the kept balancer's slots: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in-use"), nil, 0o600); err != nil {
		return false, fmt.Errorf("note the kept balancer's slots: %w", err)
	}
	return inUse == nil, nil
}

// park readies kept balancers for the next run: their processes of their
// own (C23) stopped, and where their slots go on noted. It answers those
// it could not ready, which go as a run's own do.
func (e *Environment) park(ctx context.Context, hosts []*slotHost) (gone []*slotHost) {
	ready := make([]bool, len(hosts))
	steps := make([]func() error, len(hosts))
	for i, h := range hosts {
		e.mu.Lock()
		owns, handed := h.owns, h.handed
		e.mu.Unlock()
		steps[i] = func() error {
			if owns > 0 {
				if out, ran := run(ctx, h, stopOwnCommand); !ran || out != "" {
					e.opts.Logf("a kept %s balancer is removed: its processes of their own did not stop (%s)", e.opts.Implementation.Name(), out)
					return nil
				}
			}
			dir := filepath.Dir(h.dir)
			next := strconv.Itoa(h.first + handed)
			ready[i] = os.WriteFile(filepath.Join(dir, "next-slot"), []byte(next+"\n"), 0o600) == nil &&
				os.Remove(filepath.Join(dir, "in-use")) == nil
			return nil
		}
	}
	parallel(steps...)
	for i, h := range hosts {
		if !ready[i] {
			gone = append(gone, h)
		}
	}
	return gone
}

// stopOwnCommand stops, inside a shared balancer, every process whose
// command line names a file under own/ (what lb.Separate starts: nginx -c,
// haproxy -f, apache2 -f), and waits up to 2 s for them to go; it exits 1
// when one is left. A zombie counts as gone. Only dash and coreutils, which
// every image has.
var stopOwnCommand = []string{"sh", "-c", `
pids=
for d in /proc/[0-9]*; do
  [ "${d#/proc/}" = $$ ] && continue # this script names own/ too
  case "$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)" in
  *"` + lb.ConfDir + `/own/"*) pids="$pids ${d#/proc/}" ;;
  esac
done
[ -z "$pids" ] && exit 0
kill -TERM $pids 2>/dev/null
i=0
while [ $i -lt 40 ]; do
  alive=
  for p in $pids; do
    if read -r st < "/proc/$p/stat" 2>/dev/null; then
      case "$st" in *") Z "*) ;; *) alive=$p ;; esac
    fi
  done
  [ -z "$alive" ] && exit 0
  sleep 0.05
  i=$((i + 1))
done
echo "process $alive still runs"
exit 1
`}

// warmSweeper decides, once per unit and sweep, whether a unit's kept
// containers go: when no run holds it and it was idle longer than idle
// (0: whatever its age). It holds the locks of the units it condemns
// until done, so that no run takes them meanwhile.
type warmSweeper struct {
	idle    time.Duration
	under   string // judge only the units whose folders are under it ("": all)
	decided map[string]warmVerdict
}

type warmVerdict struct {
	doomed bool
	lock   *os.File // held while a condemned unit's containers go
	dir    string   // the folder that goes with them
}

func newWarmSweeper(idle time.Duration) *warmSweeper {
	return &warmSweeper{idle: idle, decided: map[string]warmVerdict{}}
}

func (s *warmSweeper) doomed(key, dir string, created time.Time) bool {
	v, ok := s.decided[dir]
	if !ok {
		v = s.judge(key, dir, created)
		s.decided[dir] = v
	}
	return v.doomed
}

// judge decides a unit by its folder's lock and last-used mark. A unit
// without a folder (removed by hand, or of another machine's file system)
// is judged by its container's age, and never at once: a run on another
// file system may be using it.
func (s *warmSweeper) judge(key, dir string, created time.Time) warmVerdict {
	if s.under != "" && !strings.HasPrefix(dir, s.under+string(filepath.Separator)) {
		return warmVerdict{}
	}
	folderless := !validWarmKey(key) || !filepath.IsAbs(dir) || filepath.Base(dir) != key
	if _, err := os.Stat(dir); folderless || err != nil {
		return warmVerdict{doomed: time.Since(created) >= max(s.idle, WarmIdle)}
	}
	// Recently used: kept, without taking the lock a starting run wants.
	used := created
	if st, err := os.Stat(filepath.Join(dir, "last-used")); err == nil {
		used = st.ModTime()
	}
	if s.idle > 0 && time.Since(used) < s.idle {
		return warmVerdict{}
	}
	f, err := tryLock(filepath.Join(dir, "lock"), syscall.LOCK_EX)
	if err != nil || f == nil {
		return warmVerdict{} // a run uses it, or another sweep removed it
	}
	return warmVerdict{doomed: true, lock: f, dir: dir}
}

// validWarmKey: what warmKey makes, 16 hexadecimal digits.
func validWarmKey(key string) bool {
	if len(key) != 16 {
		return false
	}
	_, err := hex.DecodeString(key)
	return err == nil
}

// folders judges the units of this run's cache folder that have no
// container (removed by hand, or a run killed while it started them).
func (s *warmSweeper) folders() {
	dirs, _ := os.ReadDir(warmRoot())
	for _, d := range dirs {
		dir := filepath.Join(warmRoot(), d.Name())
		if _, seen := s.decided[dir]; !seen && d.IsDir() && validWarmKey(d.Name()) {
			s.decided[dir] = s.judge(d.Name(), dir, time.Time{})
		}
	}
}

// done removes the condemned units' folders and lets their locks go. A
// folder is first renamed aside while its lock is held, so that a run
// that makes the folder anew meanwhile locks a file nobody removes.
func (s *warmSweeper) done() {
	for _, v := range s.decided {
		if !v.doomed || v.lock == nil {
			continue
		}
		gone := v.dir + ".removed-" + strconv.Itoa(os.Getpid())
		if os.Rename(v.dir, gone) == nil {
			os.RemoveAll(gone)
		}
		unlock(v.lock)
	}
}

// warmHostDir is the folder of a kept balancer's slots/ and own/, emptied
// of what an earlier run left: its slots go with the run's first reload.
func (u *warmUnit) hostDir(part string) (string, error) {
	// Emptied, never removed: a kept balancer mounts the folders
	// themselves, and would not see new ones of the same name.
	dir := filepath.Join(u.dir, part)
	for _, sub := range []string{"slots", "own"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return "", fmt.Errorf("make the kept balancer's folder: %w", err)
		}
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return "", fmt.Errorf("empty the kept balancer's folder: %w", err)
		}
		for _, en := range entries {
			if err := os.RemoveAll(filepath.Join(dir, sub, en.Name())); err != nil {
				return "", fmt.Errorf("empty the kept balancer's folder: %w", err)
			}
		}
	}
	return dir, nil
}

// warmable says whether this run can keep and find containers: on the
// engine's default bridge, reached directly (nothing published, so a kept
// container needs nothing of the run that started it).
func (e *Environment) warmable() bool { return e.direct && e.network == nil }

// keepable: configurations of the implementation are slots of one shared
// balancer process, reloaded by a signal, which a later run's first reload
// rids of the earlier run's slots. Where slots are processes of their own
// (Caddy's caddy start per slot, Traffic Server's per configuration) the
// balancer is not kept: its slots would outlive the run.
func keepable(impl lb.Implementation) bool {
	m, ok := impl.(lb.Multiplexed)
	return ok && m.Reload().Signal != ""
}

// takeWarm takes the units of kept containers this run can use: its
// implementation's balancers (exclusively) and the backend (shared).
// Where it cannot keep containers, or another run holds the balancers,
// the run starts its own, and says why.
func (e *Environment) takeWarm(ctx context.Context, backendRef string) error {
	if !e.warmable() {
		e.opts.Logf("containers are not kept (--warm): this machine reaches them only through published ports; this run starts its own")
		return nil
	}
	impl := e.opts.Implementation
	if !e.opts.backendOnly && !e.opts.ContainerPerConfig {
		if host, ok := hostOf(impl); ok && keepable(impl) {
			img, err := e.docker.ImageInspect(ctx, e.opts.Image)
			if err != nil {
				return fmt.Errorf("inspect the image %s: %w", e.opts.Image, err)
			}
			u, ok, err := takeWarm(hostWarmKey(host, impl.Name(), img.ID), true)
			switch {
			case err != nil:
				e.opts.Logf("%v; this run starts its own balancers", err)
			case !ok:
				e.opts.Logf("the kept %s balancers are in use by another run: this run starts its own", impl.Name())
			}
			e.warmHosts = u
		} else {
			e.opts.Logf("%s runs its configurations as processes of their own, which --warm does not keep: this run starts its own balancers", impl.Name())
		}
	}
	if e.opts.Backend.usable(e) || e.localBackendFits() {
		return nil // the process's shared backend, or this program, serves this run
	}
	u, ok, err := takeWarm(backendWarmKey(backendRef, e.opts.Products), false)
	switch {
	case err != nil:
		e.opts.Logf("%v; this run starts its own backend", err)
	case !ok:
		e.opts.Logf("the kept backend is being removed: this run starts its own")
	}
	e.warmBackend = u
	return nil
}

// RemoveKept removes the kept containers (Options.Warm) of the units
// under the cache folder cache (what XDG_CACHE_HOME named for the runs
// that kept them), and their folders: for a tool that kept containers
// under a folder of its own (the benchmark) and is done with them.
func RemoveKept(ctx context.Context, cache string) error {
	root := filepath.Join(cache, "mtlsconform", "warm")
	units, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	var errs []error
	for _, u := range units {
		list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", LabelWarm+"="+u.Name())})
		if err != nil {
			errs = append(errs, fmt.Errorf("list kept containers: %w", err))
			continue
		}
		for _, c := range list.Items {
			if err := removeContainer(ctx, cli, c.ID); err != nil {
				errs = append(errs, fmt.Errorf("remove kept container %.12s: %w", c.ID, err))
			}
		}
	}
	if err := os.RemoveAll(root); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
