package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const tempPrefix = "mtlsconform-run-"

// TempDir makes a private (0700) temporary folder for one run's files and
// returns a function that removes it; a later TempDir removes folders whose
// process is gone (a run killed outright).
func TempDir() (string, func(), error) { return tempDirIn(tempBase()) }

// SystemTempDir is TempDir in the system's temporary folder (TMPDIR, or
// /tmp), never in memory: for what must cost what it costs anyone else,
// such as the bench's shell-script baseline, whose mktemp would put its
// files there.
func SystemTempDir() (string, func(), error) { return tempDirIn(os.TempDir()) }

func tempDirIn(base string) (string, func(), error) {
	SweepTempDirs()
	dir, err := os.MkdirTemp(base, tempPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", nil, fmt.Errorf("make a temporary folder in %s: %w (set TMPDIR to a folder you can write to)", base, err)
	}
	var once sync.Once
	return dir, func() { once.Do(func() { os.RemoveAll(dir) }) }, nil
}

// tempBase is where runs make their folders: TMPDIR when it is set; else
// /dev/shm where that is a file system in memory this user can write to;
// else the system's temporary folder. A run makes and removes hundreds of
// small files (slots, certificates, reports staged); on the ext4 disk of
// the machine this was measured on, making a file took about 0.8 ms of CPU,
// in memory 0.01 ms: 6% of a matrix's CPU samples were file creation.
var tempBase = sync.OnceValue(func() string {
	if os.Getenv("TMPDIR") != "" {
		return os.TempDir()
	}
	const shm = "/dev/shm"
	var fs syscall.Statfs_t
	if syscall.Statfs(shm, &fs) != nil || fs.Type != 0x01021994 { // TMPFS_MAGIC
		return os.TempDir()
	}
	probe, err := os.MkdirTemp(shm, tempPrefix+"probe-")
	if err != nil {
		return os.TempDir()
	}
	os.Remove(probe)
	return shm
})

// tempBases are the folders runs' folders may be in: where this process
// makes them, and the system's (an earlier run, or one with TMPDIR set).
func tempBases() []string {
	if b := tempBase(); b != os.TempDir() {
		return []string{b, os.TempDir()}
	}
	return []string{os.TempDir()}
}

// SweepTempDirs removes temporary folders of runs whose process is gone.
func SweepTempDirs() []string {
	var removed []string
	for _, m := range tempGlob(tempPrefix + "*") {
		rest := strings.TrimPrefix(filepath.Base(m), tempPrefix)
		pid, _, _ := strings.Cut(rest, "-")
		if n, err := strconv.Atoi(pid); err == nil && !processAlive(n) {
			if os.RemoveAll(m) == nil {
				removed = append(removed, m)
			}
		}
	}
	return removed
}

// tempGlob matches pattern (a folder name) in every folder runs' folders
// may be in.
func tempGlob(pattern string) []string {
	var out []string
	for _, base := range tempBases() {
		m, _ := filepath.Glob(filepath.Join(base, pattern))
		out = append(out, m...)
	}
	return out
}
