package harness

import (
	"os/exec"
	"strings"
	"testing"
)

// The harness and scripts/build-images.sh judge an image by the recipe
// label build-image.sh gives it; all three must compute the same, or every
// run would rebuild what the script built (or keep what it should not).
func TestImageRecipeIsTheScripts(t *testing.T) {
	for _, packages := range []string{"nginx-light", "trafficserver trafficserver-experimental-plugins"} {
		// As build-images.sh and build-image.sh compute it.
		out, err := exec.Command("bash", "-c", `{ cat build-image.sh; printf '%s\n' "$1"; } | sha256sum | cut -c1-16`, "_", packages).Output()
		if err != nil {
			t.Fatalf("sha256sum: %v", err)
		}
		if got, want := imageRecipe(packages), strings.TrimSpace(string(out)); got != want {
			t.Errorf("imageRecipe(%q) = %s, the scripts compute %s", packages, got, want)
		}
	}
	if imageRecipe("nginx-light") == imageRecipe("nginx-full") {
		t.Error("the recipe does not depend on the packages")
	}
}
