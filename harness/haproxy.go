package harness

import (
	"fmt"

	"mtlsconform/contract"
)

// HAProxy is a reference implementation still to be measured: every
// configuration is reported not supported until its renderer exists.
type HAProxy struct{}

func (HAProxy) Name() string                 { return "haproxy" }
func (HAProxy) Image() string                { return HAProxyImage }
func (HAProxy) Packages() string             { return "haproxy,ca-certificates" }
func (HAProxy) Command() []string            { return nil }
func (HAProxy) ReadyLog() string             { return "" }
func (HAProxy) Mutations() map[string]string { return map[string]string{} }
func (HAProxy) Profile() contract.Profile    { return contract.GenericHTTP400 }
func (HAProxy) Render(LBConfig, ServerFiles) (Rendered, error) {
	return Rendered{}, fmt.Errorf("%w: the haproxy renderer is not written yet", ErrNotSupported)
}
