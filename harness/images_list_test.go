package harness

import (
	"os"
	"strings"
	"testing"
)

// TestImagesListMatches: images.tsv, which scripts/build-images.sh reads
// before the CLI is built, says what each implementation says.
func TestImagesListMatches(t *testing.T) {
	data, err := os.ReadFile("images.tsv")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string][3]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("images.tsv: %q is not name, image, packages and binary separated by tabs", line)
		}
		listed[f[0]] = [3]string{f[1], f[2], f[3]}
	}
	for _, impl := range Implementations() {
		got, ok := listed[impl.Name()]
		if !ok {
			t.Errorf("images.tsv has no line for %s", impl.Name())
			continue
		}
		if want := [3]string{impl.Image(), impl.Packages(), impl.Command()[0]}; got != want {
			t.Errorf("images.tsv says %s is %v; the implementation says %v (image, packages, binary)", impl.Name(), got, want)
		}
		delete(listed, impl.Name())
	}
	for name := range listed {
		t.Errorf("images.tsv lists %s, which is no implementation", name)
	}
}
