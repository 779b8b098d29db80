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
	listed := map[string][2]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("images.tsv: %q is not name, image and packages separated by tabs", line)
		}
		listed[f[0]] = [2]string{f[1], f[2]}
	}
	for _, impl := range Implementations() {
		got, ok := listed[impl.Name()]
		if !ok {
			t.Errorf("images.tsv has no line for %s", impl.Name())
			continue
		}
		if got != [2]string{impl.Image(), impl.Packages()} {
			t.Errorf("images.tsv says %s is %v; the implementation says %s from %s", impl.Name(), got, impl.Image(), impl.Packages())
		}
		delete(listed, impl.Name())
	}
	for name := range listed {
		t.Errorf("images.tsv lists %s, which is no implementation", name)
	}
}
