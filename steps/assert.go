package steps

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
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
		fmt.Fprintf(&b, "\n  backend saw: %s", describeSeen(st.mustScheme(), c.seen))
	}
	return &contractError{msg: b.String()}
}

func abbreviate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func describeSeen(s contract.Scheme, seen []productapi.Echo) string {
	if len(seen) == 0 {
		return "no request"
	}
	var parts []string
	folds, own := map[string]bool{}, map[string]bool{}
	for _, n := range s.Stripped() {
		folds[foldName(n)], own[http.CanonicalHeaderKey(n)] = true, true
	}
	for i, e := range seen {
		h := schemeFacts(s, http.Header(e.Headers))
		// Besides the scheme's facts as read: any other spelling of its
		// headers, and X-SSL-* headers, as they came.
		for k, vs := range e.Headers {
			if ck := http.CanonicalHeaderKey(k); !own[ck] && (folds[foldName(k)] || strings.HasPrefix(ck, "X-Ssl-")) {
				h[k] = strings.Join(vs, ", ")
			}
		}
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

// everyVerify checks the verification result of every request the
// backend received; a scheme without a verify value says SUCCESS by
// forwarding the certificate and anything else by forwarding none.
func (st *scenario) everyVerify(ctx context.Context, want string) (context.Context, error) {
	c, seen, err := st.lastSeen(ctx)
	if err != nil {
		return ctx, err
	}
	s := st.mustScheme()
	if len(seen) == 0 {
		return ctx, st.violation(c, "expected the backend to receive the request with the verification result %s, it received nothing", want)
	}
	for i, e := range seen {
		h := http.Header(e.Headers)
		if s.Verify == nil {
			facts := schemeFacts(s, h)
			_, hasCert := facts[s.Cert.Place.String()]
			if hasCert != (want == "SUCCESS") {
				return ctx, st.violation(c, "request %d reached the backend with the certificate headers %v; scheme %s sends no verify value, so %s means %s",
					i+1, facts, s.Name, want, map[bool]string{true: "the certificate forwarded", false: "no certificate headers"}[want == "SUCCESS"])
			}
			continue
		}
		got := h.Values(s.Verify.Header)
		if len(got) != 1 || verifyToken(s.Verify, got[0]) != want {
			return ctx, st.violation(c, "request %d reached the backend with %s %q, expected exactly the scheme's %s value", i+1, s.Verify.Header, got, want)
		}
	}
	if s.Verify == nil {
		st.checked("scheme %s sends no verify value: %s checked as %s (%d request(s))", s.Name, want,
			map[bool]string{true: "the certificate forwarded", false: "no certificate headers"}[want == "SUCCESS"], len(seen))
		return ctx, nil
	}
	st.checked("%s at the backend: exactly the scheme's %s value (%d request(s))", s.Verify.Header, want, len(seen))
	return ctx, nil
}

func normalSerial(s string) string {
	s = strings.ToUpper(strings.ReplaceAll(s, ":", ""))
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return s
}

// expectedHeaders reads the two-column table of what the backend must
// see, each row a fact named by its dlb header, keyed by where the scheme
// puts it, resolving {serial of "x"} and {certificate of "x"}. Facts the
// scheme does not forward are returned apart: they are not checked.
func (st *scenario) expectedHeaders(t *godog.Table, s contract.Scheme) (want map[string]string, unsent []string, err error) {
	want = map[string]string{}
	for _, row := range t.Rows {
		if len(row.Cells) != 2 {
			return nil, nil, errors.New("a header table has two columns: name and value")
		}
		value, err := st.resolve(row.Cells[1].Value, func(id *pki.Identity) string { return "certificate sha256:" + id.Fingerprint() })
		if err != nil {
			return nil, nil, err
		}
		fact, ok := contract.FactOf(row.Cells[0].Value, st.cfg.CertHeader)
		if !ok {
			return nil, nil, fmt.Errorf("header %q in the table names no fact of the contract (use the dlb names: %s)", row.Cells[0].Value, strings.Join(contract.ContractHeaders(st.cfg.CertHeader), ", "))
		}
		p, sent := s.Place(fact)
		if !sent {
			if fact != contract.FactVerify {
				unsent = append(unsent, string(fact))
			}
			continue
		}
		want[p.String()] = value
	}
	return want, unsent, nil
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
	if len(seen) == 1 {
		return c, seen[0], nil
	}
	// A call the balancer closed before answering (a reload) was made
	// again under the same request id: an attempt that had reached the
	// backend shows there too. As many requests as attempts, carrying the
	// same client-certificate headers, are one call.
	if n := c.res.Attempts; n > 1 && len(seen) > 1 && len(seen) <= n && sameFacts(st.mustScheme(), seen) {
		st.checked("the call was made %d times (the balancer closed it before answering); the backend received it %d times with the same client-certificate headers", n, len(seen))
		return c, seen[len(seen)-1], nil
	}
	return nil, productapi.Echo{}, st.violation(c, "expected the backend to receive exactly one request, it received %d", len(seen))
}

// sameFacts says whether every request carries the same facts of the
// scheme.
func sameFacts(s contract.Scheme, seen []productapi.Echo) bool {
	first := schemeFacts(s, http.Header(seen[0].Headers))
	for _, e := range seen[1:] {
		if !maps.Equal(first, schemeFacts(s, http.Header(e.Headers))) {
			return false
		}
	}
	return true
}

// exactHeaders compares what the backend saw of the scheme's headers with
// the table: every fact the scheme forwards, as the table says, and no
// other. Headers a balancer adds of its own accord (a cipher, a validity
// date) are no breach of the contract and are not compared.
func (st *scenario) exactHeaders(ctx context.Context, t *godog.Table) (context.Context, error) {
	s := st.mustScheme()
	want, unsent, err := st.expectedHeaders(t, s)
	if err != nil {
		return ctx, err
	}
	c, seen, err := st.onlyRequest(ctx)
	if err != nil {
		return ctx, err
	}
	got := schemeFacts(s, http.Header(seen.Headers))
	if diff := cmp.Diff(want, got); diff != "" {
		return ctx, st.violation(c, "the client-certificate headers the backend saw differ from scheme %s (-want +got):\n%s", s.Name, diff)
	}
	var present, absent []string
	for _, f := range contract.Facts {
		if p, ok := s.Place(f); ok {
			if _, wanted := want[p.String()]; wanted {
				present = append(present, p.String())
			} else {
				absent = append(absent, p.String())
			}
		}
	}
	note := fmt.Sprintf("scheme %s at the backend:", s.Name)
	if len(present) > 0 {
		note += fmt.Sprintf(" %s as the table says (DNs compared canonically within the scheme's rendering, serials as hex, certificates by fingerprint)", strings.Join(present, ", "))
	}
	if len(absent) > 0 {
		note += fmt.Sprintf(" no %s", strings.Join(absent, ", "))
	}
	if s.Verify == nil {
		note += "; the scheme sends no verify value: presence of the certificate stands for SUCCESS"
	}
	if len(unsent) > 0 {
		note += "; not forwarded in this scheme, not checked: " + strings.Join(unsent, ", ")
	}
	st.checked("%s", note)
	return ctx, nil
}

// certForwarded checks C14: the place the scheme gives the certificate
// (header, the dlb name the feature uses for it) holds exactly the
// presented leaf, in the scheme's encoding: for URL-encoded PEM every
// character outside the unreserved set is percent-encoded, so that
// percent-decoding and form-decoding (a gateway such as WSO2 URL-decodes
// the header; a raw "+" would become a space) both recover it.
func (st *scenario) certForwarded(ctx context.Context, name, header string) (context.Context, error) {
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return ctx, err
	}
	c, seen, err := st.onlyRequest(ctx)
	if err != nil {
		return ctx, err
	}
	s := st.mustScheme()
	if fact, ok := contract.FactOf(header, st.cfg.CertHeader); !ok || fact != contract.FactCert {
		return ctx, fmt.Errorf("%q is not the certificate header of this scenario (%s)", header, st.certHeaderName())
	}
	p := s.Cert.Place
	h := http.Header(seen.Headers)
	if p.Field == "" {
		if raw := h.Values(p.Header); len(raw) != 1 {
			return ctx, st.violation(c, "expected one %s header at the backend, got %d", p.Header, len(raw))
		}
	}
	v, problem, ok := placeValue(h, p)
	if !ok {
		return ctx, st.violation(c, "expected the certificate in %s at the backend, there is none", p)
	}
	if problem != "" {
		return ctx, st.violation(c, "expected the certificate in %s: %s", p, problem)
	}
	want := "certificate sha256:" + id.Fingerprint()
	if got := certToken(s.Cert.Encoding, v); got != want {
		return ctx, st.violation(c, "expected %s to hold the presented certificate (%s) as %s; it reads as %s (value %q)",
			p, want, s.Cert.Encoding, got, abbreviate(v, 80))
	}
	st.checked("%s: the presented certificate as %s (scheme %s)%s", p, s.Cert.Encoding, s.Name, map[bool]string{
		true: "; percent-decoding and form-decoding both recover it"}[s.Cert.Encoding == contract.URLPEM])
	return ctx, nil
}

// certHeaderName is the scenario's certificate header as the features
// name it (the dlb name, or the one the scenario configured).
func (st *scenario) certHeaderName() string {
	if st.cfg.CertHeader != "" {
		return st.cfg.CertHeader
	}
	return contract.DefaultCertHeader
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
