package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/lb"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// backendImageRepo is where the product API image goes; its tag is the
// hash of the static binary, so a rebuilt backend gets a new image and an
// unchanged one reuses the old.
const backendImageRepo = "mtlsconform/productapi"

//go:embed build-image.sh
var buildImageScript []byte

// cacheDir is the folder of state that outlives runs: the image lock and
// kept containers' units (warm.go).
func cacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "mtlsconform")
}

// lockImages serialises image checks and builds within the process and
// across processes (go test runs packages in parallel), so two runs never
// build the same image at once. Each call opens the lock file anew, so
// flock also excludes other goroutines of this process.
func lockImages() (unlock func(), err error) {
	// The lock file is state that outlives runs, so it lives in the user's
	// cache folder rather than among temporary files.
	dir := cacheDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock for image builds: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "images.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock for image builds: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock for image builds: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func imageExists(ctx context.Context, cli *testcontainers.DockerClient, ref string) (bool, error) {
	_, err := cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

// EnsureImage makes sure an implementation's image is there, building it
// offline from its Debian packages when it is missing. It returns whether
// it built.
func EnsureImage(ctx context.Context, impl lb.Implementation, logf func(string, ...any)) (bool, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return false, err
	}
	defer cli.Close()
	return ensureImage(ctx, cli, impl.Image(), impl, logf)
}

// ensureImage makes sure image ref is there. When it is missing it is
// built from own's packages if it is own's image; any other image must
// have been loaded or pulled.
func ensureImage(ctx context.Context, cli *testcontainers.DockerClient, ref string, own lb.Implementation, logf func(string, ...any)) (bool, error) {
	var spec *imageSpec
	if own != nil && own.Image() == ref {
		spec = &imageSpec{ref: ref, packages: own.Packages(), name: own.Name(), binary: own.Command()[0]}
	}
	return ensureImageSpec(ctx, cli, ref, spec, logf)
}

// imageSpec is an image the project builds: its tag, its Debian
// packages, and the binary that proves it whole (build-image.sh's
// arguments).
type imageSpec struct {
	ref, packages, name, binary string
}

// ensureImageSpec is ensureImage for an image of the project's (spec),
// or, spec nil, one it only uses.
func ensureImageSpec(ctx context.Context, cli *testcontainers.DockerClient, ref string, spec *imageSpec, logf func(string, ...any)) (bool, error) {
	unlock, err := lockImages()
	if err != nil {
		return false, err
	}
	defer unlock()
	ours := spec != nil
	img, err := cli.ImageInspect(ctx, ref)
	switch {
	case err != nil && !isNotFound(err):
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	case err == nil && (!ours || img.Config != nil && img.Config.Labels[recipeLabel] == imageRecipe(spec.packages)):
		return false, nil
	case err == nil:
		logf("rebuilding %s: it was built from an older recipe (harness/build-image.sh or the packages changed)", ref)
	case !ours:
		return false, fmt.Errorf("load balancer image %s is not on this machine and is not one the project builds: "+
			"load or pull it first (docker pull %s), or leave the image setting at its default", ref, ref)
	default:
		logf("building %s from Debian packages (mmdebstrap; about 10 s, once)", ref)
	}
	script, err := os.CreateTemp("", "mtlsconform-build-image-*.sh")
	if err != nil {
		return false, fmt.Errorf("build image %s: %w", ref, err)
	}
	defer os.Remove(script.Name())
	if _, err := script.Write(buildImageScript); err != nil {
		script.Close()
		return false, fmt.Errorf("build image %s: %w", ref, err)
	}
	script.Close()
	out, err := exec.CommandContext(ctx, "bash", script.Name(), ref, spec.packages, spec.name, spec.binary).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("build image %s: %v\n%s\n(run scripts/prereqs.sh to install mmdebstrap and Docker, then try again)",
			ref, err, strings.TrimSpace(string(out)))
	}
	if img.ID != "" {
		// The older build, now untagged; kept where a container still runs it.
		cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{})
	}
	return true, nil
}

// recipeLabel names what an image of the project's was built from: its
// build script and packages (build-image.sh sets it).
const recipeLabel = "org.mtlsconform.recipe"

// imageRecipe is the recipe label build-image.sh gives an image of these
// packages: an image whose label differs was built by another script or
// package list, and is built again.
func imageRecipe(packages string) string {
	h := sha256.New()
	h.Write(buildImageScript)
	io.WriteString(h, packages+"\n")
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// EnsureBackendImage makes sure an image that runs this very executable
// as the backend exists; it returns the reference and whether it built.
// A dynamically linked program's image is built on base's image, which
// has a C library.
func EnsureBackendImage(ctx context.Context, base lb.Implementation) (string, bool, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return "", false, err
	}
	defer cli.Close()
	return ensureBackendImage(ctx, cli, base)
}

// ensureBackendImage builds, when no image holds this backend yet, an
// image around the running program itself, started with
// productapi.ServeEnv so that it serves the backend: the binary is
// self-contained and needs no Go toolchain or source tree. The tag names
// the backend's source and Go version (productapi.SourceKey), not the
// executable: every test binary, go run and the CLI built from the same
// source share one image, and a changed backend gets a new one. A static
// executable goes FROM scratch; a dynamically linked one (a test binary
// built with cgo) on the balancer image of baseImpl, whose Debian has its C
// library.
func ensureBackendImage(ctx context.Context, cli *testcontainers.DockerClient, baseImpl lb.Implementation) (string, bool, error) {
	unlock, err := lockImages()
	if err != nil {
		return "", false, err
	}
	defer func() { unlock() }() // unlock is taken anew below
	ref := backendImageRef()
	ok, err := imageExists(ctx, cli, ref)
	if err != nil || ok {
		return ref, false, err
	}
	if !productapi.CanServe() {
		return "", false, errors.New("the backend image " + ref + " is missing and this program cannot be it: " +
			"a program that starts the harness calls productapi.ServeIfAsked first in its main (or harnesstest.Main in TestMain)")
	}
	exe, err := os.Executable()
	if err != nil {
		return "", false, fmt.Errorf("find this program to run it as the backend: %w", err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		return "", false, fmt.Errorf("read this program (%s) to run it as the backend: %w", exe, err)
	}
	base := "scratch"
	if dynamic, err := dynamicallyLinked(exe); err != nil {
		return "", false, err
	} else if dynamic {
		base = baseImpl.Image()
		unlock() // ensureImage takes the lock itself
		if _, err := ensureImage(ctx, cli, base, baseImpl, func(string, ...any) {}); err != nil {
			return "", false, fmt.Errorf("this program is dynamically linked, so its backend image needs %s: %w", base, err)
		}
		if unlock, err = lockImages(); err != nil {
			return "", false, err
		}
	}
	if base == "scratch" {
		err = importBackendImage(ctx, cli, ref, data)
	} else {
		err = buildBackendImage(ctx, cli, ref, base, data)
	}
	if err != nil {
		return "", false, err
	}
	pruneBackendImages(ctx, cli, ref)
	return ref, true, nil
}

// backendImageRef names the backend image by the backend's source and the
// image's settings: a changed setting makes a new image, never reuses one
// made with the old settings.
func backendImageRef() string {
	h := sha256.Sum256([]byte(productapi.SourceKey() + "\x00" + strings.Join(backendImageSettings, "\n")))
	return backendImageRepo + ":src-" + hex.EncodeToString(h[:8])
}

// backendImageSettings are the backend image's settings, as Dockerfile
// instructions. No EXPOSE: testcontainers publishes an image's exposed
// ports on every interface of this machine when a run asks for none (the
// run reaches the backend at its address where it can), which put the
// backend on 0.0.0.0 and cost a docker-proxy and firewall rules per run.
var backendImageSettings = []string{
	"ENV " + productapi.ServeEnv + "=productapi",
	"USER 65534",
	`ENTRYPOINT ["/productapi"]`,
	`LABEL org.mtlsconform.image=productapi`,
}

// importBackendImage makes a static program's image in one step, by
// importing a file system that holds only the program (about 0.3 s,
// where a build commits a layer per instruction: about 4 s).
func importBackendImage(ctx context.Context, cli *testcontainers.DockerClient, ref string, binary []byte) error {
	rootfs, err := tarOf(tarFile{"productapi", binary, 0o755})
	if err != nil {
		return err
	}
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: rootfs, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: backendImageSettings})
	if err != nil {
		return fmt.Errorf("import backend image: %w", err)
	}
	defer res.Close()
	if err := buildStreamError(res); err != nil {
		return fmt.Errorf("import backend image: %w", err)
	}
	return nil
}

// buildBackendImage builds a dynamically linked program's image on base,
// which has its C library.
func buildBackendImage(ctx context.Context, cli *testcontainers.DockerClient, ref, base string, binary []byte) error {
	buildCtx, err := backendContext(base, binary)
	if err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags:        []string{ref},
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return fmt.Errorf("build backend image: %w", err)
	}
	defer res.Body.Close()
	if err := buildStreamError(res.Body); err != nil {
		return fmt.Errorf("build backend image: %w", err)
	}
	return nil
}

// pruneBackendImages removes backend images of earlier builds, so that
// rebuilding the program does not pile them up. Only images more than an
// hour old go (a test binary of the same go test run may be about to use a
// newer one), and one a container uses is kept: the engine refuses.
func pruneBackendImages(ctx context.Context, cli *testcontainers.DockerClient, keep string) {
	list, err := cli.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-time.Hour).Unix()
	for _, img := range list.Items {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, backendImageRepo+":") && tag != keep && img.Created < cutoff {
				cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{PruneChildren: true})
			}
		}
	}
}

// dynamicallyLinked says whether an ELF executable asks for an
// interpreter (the dynamic loader).
func dynamicallyLinked(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("read %s as an executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

func backendContext(base string, binary []byte) (io.Reader, error) {
	dockerfile := []byte("FROM " + base + "\nCOPY productapi /productapi\n" + strings.Join(backendImageSettings, "\n") + "\n")
	return tarOf(tarFile{"Dockerfile", dockerfile, 0o644}, tarFile{"productapi", binary, 0o755})
}

type tarFile struct {
	name string
	data []byte
	mode int64
}

// tarOf is a tar archive of the files, in memory.
func tarOf(files ...tarFile) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// buildStreamError reads the engine's JSON build log and returns the error
// it reports, if any.
func buildStreamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read build output: %w", err)
		}
		if msg.Stream != "" {
			tail = append(tail, strings.TrimSpace(msg.Stream))
		}
		if msg.Error != "" {
			return fmt.Errorf("%s\n%s", msg.Error, strings.Join(tail, "\n"))
		}
	}
}

// RemoveImages deletes the project's images (those of impls, built from
// Debian packages, and every backend build), so the next run starts cold.
// Containers using them must be gone.
func RemoveImages(ctx context.Context, impls []lb.Implementation) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	list, err := cli.ImageList(ctx, client.ImageListOptions{All: true})
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	var errs []error
	for _, img := range list.Items {
		for _, tag := range img.RepoTags {
			own := slices.ContainsFunc(impls, func(i lb.Implementation) bool { return i.Image() == tag })
			if own || strings.HasPrefix(tag, backendImageRepo+":") {
				if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !isNotFound(err) {
					errs = append(errs, fmt.Errorf("remove image %s: %w", tag, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}
