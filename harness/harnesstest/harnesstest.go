// Package harnesstest prepares a test binary for the harness and stops
// tests that need Docker when none answers. Use it from TestMain:
//
//	func TestMain(m *testing.M) { harnesstest.Main(m) }
package harnesstest

import (
	"context"
	"os"
	"strconv"
	"testing"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"mtlsconform/contract"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
)

// Main sets the testcontainers settings the harness needs (see
// harness.TestcontainersEnv), quiets testcontainers' own narration, and
// runs the tests.
func Main(m *testing.M) {
	Prepare()
	os.Exit(m.Run())
}

// Prepare is what Main does before running the tests, for a TestMain that
// has more to do. A test binary started as the backend (the harness runs
// the program's own executable in the backend's container) serves it here
// and never returns.
func Prepare() {
	productapi.ServeIfAsked()
	for k, v := range harness.TestcontainersEnv() {
		os.Setenv(k, v)
	}
	if os.Getenv("MTLSCONFORM_DOCKER_LOG") == "" {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
}

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
	if err := harness.CheckDocker(context.Background()); err != nil {
		if InCI() {
			tb.Fatalf("end-to-end test needs Docker and CI=true: %v", err)
		}
		tb.Skipf("SKIPPED — NO DOCKER: end-to-end test not run: %v", err)
	}
}

// OwnBackendContainers is the number of containers a run started for its
// own backend: 1 where it ran in a container, 0 where the harness served
// it itself. (A run given a shared backend started none for it.)
func OwnBackendContainers(st contract.Stats) int {
	if st.Backend == contract.BackendContainer {
		return 1
	}
	return 0
}
