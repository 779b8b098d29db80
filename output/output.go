// Package output is the one writer for every file the tool writes: reports,
// verdicts, combined truststores. Each file is replaced atomically, so a
// reader sees the old content or the new one and never half a file, and no
// file is written when it would hold key material: a private key belongs
// only in the credential files the fixtures write, never in an output.
package output

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// keyMarker is what every PEM private key block carries in its type line
// (PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY, ENCRYPTED PRIVATE KEY).
const keyMarker = "PRIVATE KEY"

// mode is the permission of every output: readable by anyone, since
// outputs carry no secrets by construction.
const mode os.FileMode = 0o644

// KeyMaterialError says that a file would contain key material. The
// writers wrap it in a refusal that says what was not written; nothing was.
type KeyMaterialError struct {
	// Path is the file that would have held the key.
	Path string
}

func (e *KeyMaterialError) Error() string {
	return fmt.Sprintf("%s would contain key material (a %s block); keys belong only in credential files: "+
		"find how the key got into this output and leave it out", filepath.Base(e.Path), keyMarker)
}

// check refuses data that holds key material.
func check(path string, data []byte) *KeyMaterialError {
	if bytes.Contains(data, []byte(keyMarker)) {
		return &KeyMaterialError{Path: path}
	}
	return nil
}

// WriteFile writes data to path atomically with mode 0644, replacing any
// file there. It refuses, writing nothing, when data contains key material.
// The folder must exist.
func WriteFile(path string, data []byte) error {
	if km := check(path, data); km != nil {
		return fmt.Errorf("refusing to write %s: %w", path, km)
	}
	return writeAtomic(path, data)
}

// WriteFiles writes each of files (file name to content) into dir, making
// dir first. It is all or nothing for key material: every file is checked
// before any is written, and one that would hold a key means none is
// written. Each file is then written atomically, in name order.
func WriteFiles(dir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for name := range files {
		if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
			return fmt.Errorf("write %q in %s: give a plain file name, not a path (nothing was written)", name, dir)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if km := check(filepath.Join(dir, name), files[name]); km != nil {
			return fmt.Errorf("refusing to write any of the %d file(s) in %s: %w", len(files), dir, km)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make folder %s: %w (is its parent writable?)", dir, err)
	}
	for _, name := range names {
		if err := writeAtomic(filepath.Join(dir, name), files[name]); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic writes a temporary file beside path and renames it over
// path: a rename within one folder is atomic, so a reader (or a run killed
// half way) never sees a partial file. The temporary file is removed on
// any failure.
func writeAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w (is the folder there and writable?)", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	// CreateTemp makes the file 0600; outputs are meant to be read.
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("%w (is the disk full?)", err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%w (is a folder in the way at that path?)", err)
	}
	return nil
}
