package steps

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/cucumber/godog"
	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
)

func (st *scenario) last() (*call, error) {
	if len(st.calls) == 0 {
		return nil, errors.New("no call was made in this scenario before this check")
	}
	return st.calls[len(st.calls)-1], nil
}

// violation builds a contract error that shows what was sent, what came
// back and, when known, what the backend saw.
func (st *scenario) violation(c *call, format string, args ...any) error {
	var b strings.Builder
	fmt.Fprintf(&b, format, args...)
	fmt.Fprintf(&b, "\n  sent:        %s", c.res.Sent())
	if len(c.extra) > 0 {
		keys := make([]string, 0, len(c.extra))
		for k := range c.extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range c.extra[k] {
				fmt.Fprintf(&b, "\n               with header %s: %s", k, abbreviate(v, 80))
			}
		}
	}
	fmt.Fprintf(&b, "\n  got:         %s", c.res.Outcome())
	fmt.Fprintf(&b, "\n  target:      %s (profile %s)", st.suite.Target.Describe(), st.suite.Profile.Name)
	if c.seenDone {
		fmt.Fprintf(&b, "\n  backend saw: %s", describeSeen(c.seen))
	}
	return &contractError{msg: b.String()}
}

func abbreviate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func describeSeen(seen []productapi.Echo) string {
	if len(seen) == 0 {
		return "no request"
	}
	var parts []string
	for i, e := range seen {
		h := clientCertHeaders(http.Header(e.Headers), nil)
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, k+"="+abbreviate(h[k], 70))
		}
		parts = append(parts, fmt.Sprintf("request %d: %s %s; client-certificate headers: {%s}", i+1, e.Method, e.Path, strings.Join(kv, ", ")))
	}
	return strings.Join(parts, "\n               ")
}

// backendSaw asks the target once per call what the backend received.
func (st *scenario) backendSaw(ctx context.Context, c *call) ([]productapi.Echo, error) {
	if c.seenDone {
		return c.seen, nil
	}
	seen, err := st.suite.Target.BackendRequests(ctx, c.res.RequestID)
	if err != nil {
		return nil, err
	}
	c.seen, c.seenDone = seen, true
	return seen, nil
}

func (st *scenario) statusIs(want int) error {
	c, err := st.last()
	if err != nil {
		return err
	}
	if c.res.TLSAlert != "" || c.res.Status != want {
		return st.violation(c, "expected HTTP %d, got %s", want, c.res.Outcome())
	}
	st.checked("HTTP %d", want)
	return nil
}

func (st *scenario) pageSays(text string) error {
	c, err := st.last()
	if err != nil {
		return err
	}
	if !strings.Contains(string(c.res.Body), text) {
		return st.violation(c, "expected the page to say %q, got %s", text, c.res.Outcome())
	}
	st.checked("the page says %q", text)
	return nil
}

// refused checks a refusal the way the profile says the implementation
// refuses: HTTP 400, or a TLS alert.
func (st *scenario) refused() error {
	c, err := st.last()
	if err != nil {
		return err
	}
	if !c.res.CertificateRequested {
		if c.res.TLSAlert != "" {
			// A protocol-version or cipher alert is no refusal of the caller:
			// the balancer could not talk to this client at all.
			return st.violation(c, "expected the load balancer to ask for a client certificate and refuse it; "+
				"the handshake ended before it asked (%s): the balancer and this client share no TLS version or cipher", c.res.TLSAlert)
		}
		return st.violation(c, "expected the load balancer to ask for a client certificate; it never did")
	}
	if r := st.suite.Profile.Refusal; !r.Shows(c.res.TLSAlert, c.res.Status) {
		want := map[contract.Refusal]string{
			contract.RefuseTLSAlert: "the handshake to be aborted with a TLS alert",
			contract.RefuseMixed:    "a refusal with HTTP 400 or a TLS alert",
		}[r]
		if want == "" {
			want = "a refusal with HTTP 400"
		}
		return st.violation(c, "expected %s, got %s", want, c.res.Outcome())
	}
	st.checked("refused as profile %s says (%s): %s", st.suite.Profile.Name, st.suite.Profile.Refusal, c.res.Outcome())
	return nil
}

func (st *scenario) backendReceivedNothing(ctx context.Context) (context.Context, error) {
	for _, c := range st.calls {
		seen, err := st.backendSaw(ctx, c)
		if err != nil {
			return ctx, err
		}
		if len(seen) != 0 {
			return ctx, st.violation(c, "expected the backend to receive nothing, it received %d request(s)", len(seen))
		}
	}
	st.checked("the backend's request log holds no request of this scenario's %d call(s)", len(st.calls))
	return ctx, nil
}

// productList checks the answer is the product list. Against the
// reference (or a live target given --expect-products) it must equal the
// known list; against any other live target it must be what the contract
// promises and no more: a JSON array of one or more product objects. The
// scenario's evidence says which check ran.
func (st *scenario) productList() error {
	c, err := st.last()
	if err != nil {
		return err
	}
	if c.res.TLSAlert != "" || c.res.Status != http.StatusOK {
		return st.violation(c, "expected HTTP 200 with the product list, got %s", c.res.Outcome())
	}
	got, err := productapi.CheckProductList(c.res.Body)
	if err != nil {
		return st.violation(c, "expected the product list (a JSON array of product objects), the body is %v", err)
	}
	check := st.suite.Target.ProductCheck()
	if check.Want == nil {
		st.checked("product list: a JSON array of %d product object(s) with the contract's fields and types (%s)", len(got), check.Source)
		return nil
	}
	if diff := cmp.Diff(check.Want, got); diff != "" {
		return st.violation(c, "the product list differs from %s (-want +got):\n%s", check.Source, diff)
	}
	st.checked("product list: equal to %s (%d products)", check.Source, len(got))
	return nil
}

func (st *scenario) everyVerify(ctx context.Context, want string) (context.Context, error) {
	c, seen, err := st.lastSeen(ctx)
	if err != nil {
		return ctx, err
	}
	if len(seen) == 0 {
		return ctx, st.violation(c, "expected the backend to receive the request with %s %q, it received nothing", contract.HeaderVerify, want)
	}
	for i, e := range seen {
		if got := http.Header(e.Headers).Values(contract.HeaderVerify); len(got) != 1 || got[0] != want {
			return ctx, st.violation(c, "request %d reached the backend with %s %q, expected exactly %q", i+1, contract.HeaderVerify, got, want)
		}
	}
	st.checked("%s at the backend: exactly %q (%d request(s))", contract.HeaderVerify, want, len(seen))
	return ctx, nil
}

// certHeaderNames are the names under which a certificate may arrive: the
// scenario's configured header and the default.
func (st *scenario) certHeaderNames() []string {
	n := []string{contract.DefaultCertHeader}
	if st.cfg.CertHeader != "" {
		n = append(n, st.cfg.CertHeader)
	}
	return n
}

// contractHeaders are the headers the contract speaks of: the identity
// headers and the certificate header under each name it may have.
func contractHeaders(certNames []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range append(contract.ContractHeaders(""), certNames...) {
		m[http.CanonicalHeaderKey(n)] = true
	}
	return m
}

// clientCertHeaders picks the X-SSL-* headers and the certificate headers
// out of what the backend saw, normalised for comparison: serials as
// upper-case hex without colons or leading zeros, DNs in one canonical
// form, certificates as their fingerprint. A header with an empty value
// carries nothing and counts as absent.
func clientCertHeaders(h http.Header, certNames []string) map[string]string {
	isCert := map[string]bool{http.CanonicalHeaderKey(contract.DefaultCertHeader): true}
	for _, n := range certNames {
		isCert[http.CanonicalHeaderKey(n)] = true
	}
	out := map[string]string{}
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		v := strings.Join(vs, ", ")
		if strings.TrimSpace(v) == "" {
			continue
		}
		switch {
		case isCert[ck]:
			out[ck] = certificateToken(v)
		case ck == http.CanonicalHeaderKey(contract.HeaderSerial):
			out[ck] = normalSerial(v)
		case ck == http.CanonicalHeaderKey(contract.HeaderDN) || ck == http.CanonicalHeaderKey(contract.HeaderIssuer):
			out[ck] = headerDN(v)
		case strings.HasPrefix(ck, "X-Ssl-"):
			out[ck] = v
		}
	}
	return out
}

func normalSerial(s string) string {
	s = strings.ToUpper(strings.ReplaceAll(s, ":", ""))
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return s
}

// certificateToken reads a forwarded certificate in any of the encodings
// balancers use (URL-encoded PEM, raw PEM, base64 DER) and names it by
// fingerprint; what does not parse is shown as it came.
func certificateToken(v string) string {
	// Percent-encoding (nginx: %20 for spaces) or form encoding (+ for
	// spaces, %2B for the base64 plus signs); raw PEM passes either way.
	candidates := []string{v}
	if dec, err := url.PathUnescape(v); err == nil {
		candidates = append(candidates, dec)
	}
	if dec, err := url.QueryUnescape(v); err == nil {
		candidates = append(candidates, dec)
	}
	for _, c := range candidates {
		if block, _ := pem.Decode([]byte(c)); block != nil {
			if certs, err := pki.ParseCertificates("header", pem.EncodeToMemory(block)); err == nil {
				return "certificate sha256:" + pki.Fingerprint(certs[0])
			}
		}
	}
	if der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err == nil {
		if certs, err := pki.ParseCertificates("header", der); err == nil {
			return "certificate sha256:" + pki.Fingerprint(certs[0])
		}
	}
	return "unparseable certificate: " + abbreviate(v, 60)
}

// expectedHeaders reads the two-column table of what the backend must see,
// resolving {serial of "x"} and {certificate of "x"}.
func (st *scenario) expectedHeaders(t *godog.Table) (map[string]string, error) {
	want := map[string]string{}
	for _, row := range t.Rows {
		if len(row.Cells) != 2 {
			return nil, errors.New("a header table has two columns: name and value")
		}
		name := http.CanonicalHeaderKey(row.Cells[0].Value)
		value, err := st.resolve(row.Cells[1].Value, func(id *pki.Identity) string { return "certificate sha256:" + id.Fingerprint() })
		if err != nil {
			return nil, err
		}
		want[name] = value
	}
	return want, nil
}

// lastSeen returns the last call and what the backend received of it.
func (st *scenario) lastSeen(ctx context.Context) (*call, []productapi.Echo, error) {
	c, err := st.last()
	if err != nil {
		return nil, nil, err
	}
	seen, err := st.backendSaw(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	return c, seen, nil
}

// onlyRequest returns the last call and the one request it caused at the
// backend; any other number is a contract violation.
func (st *scenario) onlyRequest(ctx context.Context) (*call, productapi.Echo, error) {
	c, seen, err := st.lastSeen(ctx)
	if err != nil {
		return nil, productapi.Echo{}, err
	}
	if len(seen) != 1 {
		return nil, productapi.Echo{}, st.violation(c, "expected the backend to receive exactly one request, it received %d", len(seen))
	}
	return c, seen[0], nil
}

// exactHeaders compares what the backend saw of the contract's headers, of
// the headers in the table and of the headers the caller sent itself. Other
// X-SSL-* headers a balancer adds of its own accord (a cipher, a validity
// date) are no breach of the contract and are left out of the comparison.
func (st *scenario) exactHeaders(ctx context.Context, t *godog.Table) (context.Context, error) {
	want, err := st.expectedHeaders(t)
	if err != nil {
		return ctx, err
	}
	c, seen, err := st.onlyRequest(ctx)
	if err != nil {
		return ctx, err
	}
	compared := contractHeaders(st.certHeaderNames())
	for k := range want {
		compared[k] = true
	}
	named := len(compared)
	var callerNames []string
	for k := range c.extra {
		if ck := http.CanonicalHeaderKey(k); !compared[ck] {
			compared[ck] = true
			callerNames = append(callerNames, k)
		}
	}
	got := clientCertHeaders(http.Header(seen.Headers), st.certHeaderNames())
	var ignored []string
	for k := range got {
		if !compared[k] {
			ignored = append(ignored, k)
			delete(got, k)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return ctx, st.violation(c, "the client-certificate headers the backend saw differ (-want +got):\n%s", diff)
	}
	names := make([]string, 0, named)
	for k := range compared {
		if !slices.ContainsFunc(callerNames, func(n string) bool { return http.CanonicalHeaderKey(n) == k }) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	note := "headers at the backend: " + strings.Join(names, ", ") + " as the table says (DNs compared in canonical form, serials as hex)"

	if len(ignored) > 0 {
		sort.Strings(ignored)
		note += "; not part of the contract, not compared: " + strings.Join(ignored, ", ")
	}
	st.checked("%s", note)
	return ctx, nil
}

// certForwarded checks C14: the header holds the presented leaf as PEM in
// which every character outside the unreserved set is percent-encoded, so
// that percent-decoding and form-decoding (a gateway such as WSO2
// URL-decodes the header; a raw "+" would become a space) both recover it.
func (st *scenario) certForwarded(ctx context.Context, name, header string) (context.Context, error) {
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return ctx, err
	}
	c, seen, err := st.onlyRequest(ctx)
	if err != nil {
		return ctx, err
	}
	raw := http.Header(seen.Headers).Values(header)
	if len(raw) != 1 {
		return ctx, st.violation(c, "expected one %s header at the backend, got %d", header, len(raw))
	}
	want := "certificate sha256:" + id.Fingerprint()
	for _, dec := range []struct {
		how    string
		decode func(string) (string, error)
	}{{"percent-decoding", url.PathUnescape}, {"form-decoding", url.QueryUnescape}} {
		pemText, err := dec.decode(raw[0])
		if err != nil {
			return ctx, st.violation(c, "expected %s to hold URL-encoded PEM; %s fails (%v) on %q", header, dec.how, err, abbreviate(raw[0], 80))
		}
		if got := pemToken(pemText); got != want {
			return ctx, st.violation(c, "expected %s to hold the presented certificate (%s) as URL-encoded PEM; after %s it reads as %s (value %q)",
				header, want, dec.how, got, abbreviate(raw[0], 80))
		}
	}
	st.checked("%s: URL-encoded PEM of the presented certificate; percent-decoding and form-decoding both recover it", header)
	return ctx, nil
}

// pemToken names the certificate in PEM text by fingerprint.
func pemToken(s string) string {
	if block, _ := pem.Decode([]byte(s)); block != nil {
		if certs, err := pki.ParseCertificates("header", pem.EncodeToMemory(block)); err == nil {
			return "certificate sha256:" + pki.Fingerprint(certs[0])
		}
	}
	return "not a PEM certificate"
}

func (st *scenario) inputRefused(text string) error {
	if st.inputErr == nil {
		return &contractError{msg: fmt.Sprintf("expected the input to be refused with an error saying %q; it was accepted", text)}
	}
	if !errors.Is(st.inputErr, pki.ErrBadInput) {
		return &contractError{msg: fmt.Sprintf("expected a bad-input error, got another kind: %v", st.inputErr)}
	}
	return st.errorSays(text)
}

func (st *scenario) errorSays(text string) error {
	if st.inputErr == nil || !strings.Contains(st.inputErr.Error(), text) {
		return &contractError{msg: fmt.Sprintf("expected an error saying %q, got %v", text, st.inputErr)}
	}
	return nil
}
