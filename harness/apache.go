package harness

import (
	"fmt"

	"mtlsconform/contract"
)

// Apache is a reference implementation still to be measured: every
// configuration is reported not supported until its renderer exists.
type Apache struct{}

func (Apache) Name() string                 { return "apache" }
func (Apache) Image() string                { return "mtlsconform/apache:bookworm" }
func (Apache) Packages() string             { return "apache2,ca-certificates" }
func (Apache) Command() []string            { return nil }
func (Apache) ReadyLog() string             { return "" }
func (Apache) Mutations() map[string]string { return map[string]string{} }
func (Apache) Profile() contract.Profile    { return contract.GenericHTTP400 }
func (Apache) Render(LBConfig, ServerFiles) (Rendered, error) {
	return Rendered{}, fmt.Errorf("%w: the apache renderer is not written yet", ErrNotSupported)
}
