package harness

import (
	"fmt"

	"mtlsconform/contract"
)

// Caddy is a reference implementation still to be measured: every
// configuration is reported not supported until its renderer exists.
type Caddy struct{}

func (Caddy) Name() string                 { return "caddy" }
func (Caddy) Image() string                { return "mtlsconform/caddy:bookworm" }
func (Caddy) Packages() string             { return "caddy,ca-certificates" }
func (Caddy) Command() []string            { return nil }
func (Caddy) ReadyLog() string             { return "" }
func (Caddy) Mutations() map[string]string { return map[string]string{} }
func (Caddy) Profile() contract.Profile    { return contract.GenericHTTP400 }
func (Caddy) Render(LBConfig, ServerFiles) (Rendered, error) {
	return Rendered{}, fmt.Errorf("%w: the caddy renderer is not written yet", ErrNotSupported)
}
