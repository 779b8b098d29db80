package caddy

import (
	"testing"

	"mtlsconform/harness/harnesstest"
)

// TestMain lets this test binary be the backend of the balancers its
// tests start.
func TestMain(m *testing.M) { harnesstest.Main(m) }
