package harness

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the CI environment variable says so.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// RequireDocker stops a test that needs Docker when none answers: it fails
// in CI, where a skipped end-to-end test would prove nothing, and skips with
// a loud reason elsewhere.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	if err := CheckDocker(context.Background()); err != nil {
		if InCI() {
			tb.Fatalf("end-to-end test needs Docker and CI=true: %v", err)
		}
		tb.Skipf("SKIPPED — NO DOCKER: end-to-end test not run: %v", err)
	}
}
