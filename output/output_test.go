package output

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// key is spelled in parts: no committed file looks like a key.
var key = []byte("-----BEGIN " + "PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END " + "PRIVATE KEY-----\n")

// listDir returns the names in dir and the contents of its files ("" for
// a folder).
func listDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			got[e.Name()] = ""
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(data)
	}
	return got
}

func TestWriteFileRefusesKeyMaterial(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, append([]byte("-----BEGIN CERTIFICATE-----\n"), key...))
	var km *KeyMaterialError
	if !errors.As(err, &km) || km.Path != path {
		t.Fatalf("WriteFile = %v, want a KeyMaterialError for %s", err, path)
	}
	if !strings.Contains(err.Error(), "refusing to write "+path+": bundle.pem would contain key material") || !strings.Contains(err.Error(), "leave it out") {
		t.Errorf("error %q does not say what was refused and what to do", err)
	}
	if diff := cmp.Diff(map[string]string{"bundle.pem": "old"}, listDir(t, dir)); diff != "" {
		t.Errorf("folder after the refusal (-want +got):\n%s", diff)
	}
}

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.md")
	// An existing file, private to its owner: the replacement is an output
	// and gets the output's mode, not the old file's.
	if err := os.WriteFile(path, []byte("a longer old content that must not survive"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	// Only the file itself: no temporary file left beside it.
	if diff := cmp.Diff(map[string]string{"report.md": "new"}, listDir(t, dir)); diff != "" {
		t.Errorf("folder after the write (-want +got):\n%s", diff)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestWriteFileFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// A non-empty folder where the file should go: the rename fails.
	blocker := filepath.Join(dir, "out.json")
	if err := os.MkdirAll(filepath.Join(blocker, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(blocker, []byte("{}")); err == nil || !strings.Contains(err.Error(), blocker) {
		t.Fatalf("WriteFile over a folder = %v, want an error naming the path", err)
	}
	if diff := cmp.Diff(map[string]string{"out.json": ""}, listDir(t, dir)); diff != "" {
		t.Errorf("temporary file left behind (-want +got):\n%s", diff)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x"), []byte("x")); err == nil || !strings.Contains(err.Error(), "is the folder there") {
		t.Errorf("WriteFile into a missing folder = %v, want a hint", err)
	}
}

func TestWriteFilesAllOrNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reports")
	files := map[string][]byte{"a.json": []byte("{}"), "b.md": append([]byte("# leaked\n"), key...), "c.html": []byte("<p>")}
	err := WriteFiles(dir, files)
	var km *KeyMaterialError
	if !errors.As(err, &km) || km.Path != filepath.Join(dir, "b.md") {
		t.Fatalf("WriteFiles = %v, want a KeyMaterialError for b.md", err)
	}
	if !strings.Contains(err.Error(), "refusing to write any of the 3 file(s) in "+dir+": b.md would contain key material") {
		t.Errorf("error %q does not say that nothing was written", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the folder was made or written despite the refusal: %v", err)
	}
}

func TestWriteFilesWritesEach(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "reports")
	if err := WriteFiles(dir, map[string][]byte{"a.json": []byte("{}"), "b.md": []byte("# b")}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(dir, map[string][]byte{"b.md": []byte("# b again")}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.json": "{}", "b.md": "# b again"}
	if diff := cmp.Diff(want, listDir(t, dir)); diff != "" {
		t.Errorf("folder (-want +got):\n%s", diff)
	}
}

func TestWriteFilesRefusesPaths(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", "..", "../escape.md", "sub/file.md"} {
		if err := WriteFiles(dir, map[string][]byte{"ok.md": []byte("ok"), name: []byte("x")}); err == nil {
			t.Errorf("WriteFiles with name %q succeeded, want a refusal", name)
		}
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("files written despite the refusal: %v", got)
	}
}
