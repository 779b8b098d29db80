package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

const tempPrefix = "mtlsconform-run-"

// TempDir makes a private (0700) temporary folder for one run's files and
// returns a function that removes it; a later TempDir removes folders whose
// process is gone (a run killed outright).
func TempDir() (string, func(), error) {
	SweepTempDirs()
	dir, err := os.MkdirTemp("", tempPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", nil, fmt.Errorf("make a temporary folder: %w (is TMPDIR writable?)", err)
	}
	var once sync.Once
	return dir, func() { once.Do(func() { os.RemoveAll(dir) }) }, nil
}

// SweepTempDirs removes temporary folders of runs whose process is gone.
func SweepTempDirs() []string {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	var removed []string
	for _, m := range matches {
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
