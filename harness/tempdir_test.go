package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A run's folder is private and where tempBase says: TMPDIR when set, else
// memory (/dev/shm) where the machine has it, else the system's folder.
func TestTempDirPlace(t *testing.T) {
	if dir := os.Getenv("MTLSCONFORM_TEMPDIR_CHILD"); dir != "" {
		// The child: say where a run's folder goes under this environment.
		got, remove, err := TempDir()
		if err != nil {
			t.Fatal(err)
		}
		defer remove()
		os.WriteFile(filepath.Join(dir, "place"), []byte(filepath.Dir(got)), 0o600)
		return
	}
	// place runs the child with this environment but TMPDIR, and tmpdir
	// as TMPDIR when given.
	place := func(tmpdir string) string {
		t.Helper()
		out := t.TempDir()
		env := []string{"MTLSCONFORM_TEMPDIR_CHILD=" + out}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "TMPDIR=") {
				env = append(env, kv)
			}
		}
		if tmpdir != "" {
			env = append(env, "TMPDIR="+tmpdir)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestTempDirPlace$")
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, b)
		}
		b, err := os.ReadFile(filepath.Join(out, "place"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	chosen := t.TempDir()
	if got := place(chosen); got != chosen {
		t.Errorf("with TMPDIR=%s a run's folder went to %s", chosen, got)
	}
	var fs syscall.Statfs_t
	inMemory := syscall.Statfs("/dev/shm", &fs) == nil && fs.Type == 0x01021994
	if got, want := place(""), map[bool]string{true: "/dev/shm", false: "/tmp"}[inMemory]; got != want {
		t.Errorf("without TMPDIR a run's folder went to %q, want %q", got, want)
	}

	sys, removeSys, err := SystemTempDir()
	if err != nil {
		t.Fatal(err)
	}
	removeSys()
	if filepath.Dir(sys) != filepath.Clean(os.TempDir()) {
		t.Errorf("SystemTempDir made %s, want it in %s", sys, os.TempDir())
	}

	dir, remove, err := TempDir()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	remove()
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("a run's folder must be its user's alone: %v %v", st.Mode(), err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("remove left %s: %v", dir, err)
	}
}
