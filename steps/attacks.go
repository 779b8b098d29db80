package steps

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/cucumber/godog"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/partner"
)

// The steps of the attacks that got through real balancers (C18–C22):
// smuggled spellings, the plain-HTTP door, virtual hosts, big
// certificates and both TLS versions.

func (st *scenario) registerAttackSteps(sc *godog.ScenarioContext) {
	sc.When(re(`^the partner calls (GET|HEAD|POST) (\S+) without a certificate over TLS (1\.2|1\.3)$`), st.callWithoutOverTLS)
	sc.When(re(`^the partner calls (GET|HEAD|POST) (\S+) with the certificate "([^"]+)"( and its chain)? over TLS (1\.2|1\.3)$`), st.callWithOverTLS)
	sc.When(re(`^the partner calls (GET|HEAD|POST) (\S+) over plain HTTP with the headers:$`), st.callPlain)
	sc.When(re(`^the partner calls (GET) (\S+) for the protected host over a connection made for the public host, with the headers:$`), st.callProtectedViaPublic)
	sc.When(re(`^the partner calls (GET) (\S+) for the protected host over a connection made for the public host with the certificate "([^"]+)"$`), st.callProtectedViaPublicWith)
	sc.When(re(`^the partner calls (GET) (\S+) for the protected host over a connection without SNI, with the headers:$`), st.callProtectedWithoutSNI)
	sc.When(re(`^the partner calls (GET) (\S+) for the public host and then for the protected host over one HTTP/2 connection$`), st.callPublicThenProtectedH2)

	sc.Then(re(`^the call used TLS (1\.2|1\.3)$`), st.usedTLS)
	sc.Then(re(`^the backend received each client-certificate header once, in no other spelling$`), st.noOtherSpelling)
	sc.Then(re(`^the plain-HTTP call was redirected to HTTPS, refused, or passed on with the balancer's own values$`), st.plainDoorClosed)
	sc.Then(re(`^the request for the protected host was refused or verified$`), st.protectedRefusedOrVerified)
	sc.Then(re(`^the certificate header of "([^"]+)" is larger than 8 KiB$`), st.certHeaderLarge)
	sc.Then(re(`^the certificate of "([^"]+)" arrived whole in the header "([^"]+)", or the call was refused with a 4xx before the backend$`), st.bigCertWholeOrRefused)
}

var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

func (st *scenario) callWithoutOverTLS(ctx context.Context, method, path, version string) (context.Context, error) {
	return st.send(ctx, false, partner.Request{Method: method, Path: path, TLSVersion: tlsVersions[version]})
}

func (st *scenario) callWithOverTLS(ctx context.Context, method, path, name, chain, version string) (context.Context, error) {
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return ctx, err
	}
	return st.send(ctx, false, partner.Request{Method: method, Path: path, Credential: id, SendChain: chain != "", TLSVersion: tlsVersions[version]})
}

func (st *scenario) usedTLS(version string) error {
	c, err := st.last()
	if err != nil {
		return err
	}
	want := tls.VersionName(tlsVersions[version])
	if c.res.TLSVersion != want {
		return st.violation(c, "expected the call to use %s, it used %q", want, c.res.TLSVersion)
	}
	st.checked("the connection used %s", want)
	return nil
}

func (st *scenario) callPlain(ctx context.Context, method, path string, table *godog.Table) (context.Context, error) {
	h, err := st.headerTable(table)
	if err != nil {
		return ctx, err
	}
	return st.send(ctx, true, partner.Request{Method: method, Path: path, Header: h})
}

func (st *scenario) hosts() (partner.Request, error) {
	hs := st.suite.Target.Hosts()
	if hs.Public == "" {
		return partner.Request{}, NotApplicable("the target serves no public host the harness knows of")
	}
	return partner.Request{Host: hs.Protected, SNI: hs.Public}, nil
}

func (st *scenario) callProtectedViaPublic(ctx context.Context, method, path string, table *godog.Table) (context.Context, error) {
	h, err := st.headerTable(table)
	if err != nil {
		return ctx, err
	}
	r, err := st.hosts()
	if err != nil {
		return ctx, err
	}
	r.Method, r.Path, r.Header = method, path, h
	return st.send(ctx, false, r)
}

func (st *scenario) callProtectedViaPublicWith(ctx context.Context, method, path, name string) (context.Context, error) {
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return ctx, err
	}
	r, err := st.hosts()
	if err != nil {
		return ctx, err
	}
	r.Method, r.Path, r.Credential, r.SendChain = method, path, id, true
	return st.send(ctx, false, r)
}

func (st *scenario) callProtectedWithoutSNI(ctx context.Context, method, path string, table *godog.Table) (context.Context, error) {
	h, err := st.headerTable(table)
	if err != nil {
		return ctx, err
	}
	return st.send(ctx, false, partner.Request{Method: method, Path: path, Header: h, NoSNI: true, Host: st.suite.Target.Hosts().Protected})
}

// callPublicThenProtectedH2 opens one HTTP/2 connection for the public
// host, proves the public host answers on it, then asks it for the
// protected host, as a browser that coalesces connections would.
func (st *scenario) callPublicThenProtectedH2(ctx context.Context, method, path string) (context.Context, error) {
	r, err := st.hosts()
	if err != nil {
		return ctx, err
	}
	public := partner.Request{Method: method, Path: path, SNI: r.SNI, Host: r.SNI, HTTP2: true}
	protected := partner.Request{Method: method, Path: path, SNI: r.SNI, Host: r.Host, HTTP2: true}
	before := len(st.calls)
	ctx, err = st.send(ctx, false, public, protected)
	if err != nil {
		return ctx, err
	}
	first := st.calls[before]
	if first.res.TLSAlert != "" || first.res.Status/100 != 2 || first.res.Protocol != "HTTP/2.0" {
		return ctx, NotApplicable("the public host did not serve the first request over HTTP/2 (%s, protocol %q), so there was no connection to reuse",
			first.res.Outcome(), first.res.Protocol)
	}
	if len(st.calls)-before != 2 {
		return ctx, NotApplicable("the connection ended after the public host's answer")
	}
	return ctx, nil
}

// foldName is the name a CGI-style backend reads: case and "_" for "-"
// folded away.
func foldName(name string) string { return contract.FoldHeader(name) }

// contractFolds are the folded names of every header the scenario's
// scheme sets or strips.
func (st *scenario) contractFolds() map[string]bool { return st.schemeFolds() }

// fieldsOf are the header fields a request arrived with: as spelled on the
// wire where the backend kept them, else as Go filed them.
func fieldsOf(e productapi.Echo) []productapi.RawHeader {
	if len(e.RawHeaders) > 0 {
		return e.RawHeaders
	}
	var out []productapi.RawHeader
	for k, vs := range e.Headers {
		for _, v := range vs {
			out = append(out, productapi.RawHeader{Name: k, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// noOtherSpelling checks C18 at the backend: each contract header arrives
// at most once, and never under a spelling with "_" (no balancer sets one
// of its own; such a field is the caller's).
func (st *scenario) noOtherSpelling(ctx context.Context) (context.Context, error) {
	c, seen, err := st.onlyRequest(ctx)
	if err != nil {
		return ctx, err
	}
	folds := st.contractFolds()
	byName := map[string][]string{}
	var problems []string
	for _, f := range fieldsOf(seen) {
		fold := foldName(f.Name)
		if !folds[fold] {
			continue
		}
		byName[fold] = append(byName[fold], f.Name)
		if strings.Contains(f.Name, "_") {
			problems = append(problems, fmt.Sprintf("%s: %s (a spelling with underscores: a CGI-style backend reads it as %s)",
				f.Name, abbreviate(f.Value, 60), strings.ToUpper(strings.ReplaceAll(fold, "-", "_"))))
		}
	}
	folded := make([]string, 0, len(byName))
	for k := range byName {
		folded = append(folded, k)
	}
	sort.Strings(folded)
	for _, k := range folded {
		if n := len(byName[k]); n > 1 {
			problems = append(problems, fmt.Sprintf("%s arrived %d times (as %s)", k, n, strings.Join(byName[k], ", ")))
		}
	}
	if len(problems) > 0 {
		return ctx, st.violation(c, "the backend received copies of contract headers the caller sent:\n    %s", strings.Join(problems, "\n    "))
	}
	how := "names as spelled on the wire"
	if len(seen.RawHeaders) == 0 {
		how = "names as the backend filed them (it kept no raw header lines)"
	}
	st.checked("each contract header at most once at the backend, none spelled with underscores (%s)", how)
	return ctx, nil
}

// plainDoorClosed checks C19: the plain-HTTP call was redirected to an
// https:// URL or refused with a 4xx, and nothing reached the backend; or
// it reached the backend with no contract header other than, at most, the
// balancer's own X-SSL-Client-Verify NONE.
func (st *scenario) plainDoorClosed(ctx context.Context) (context.Context, error) {
	c, seen, err := st.lastSeen(ctx)
	if err != nil {
		return ctx, err
	}
	res := c.res
	switch {
	case res.TLSAlert != "":
		return ctx, st.violation(c, "a plain-HTTP call cannot end in a TLS alert; got %s", res.Outcome())
	case res.Status >= 300 && res.Status < 400:
		loc := res.Header.Get("Location")
		u, perr := url.Parse(loc)
		if perr != nil || u.Scheme != "https" {
			return ctx, st.violation(c, "expected a redirect to HTTPS, the Location is %q", loc)
		}
		if err := st.refusedBeforeBackend(c, seen, "the call was redirected"); err != nil {
			return ctx, err
		}
		st.checked("plain HTTP redirected (%d) to %s; the backend received nothing", res.Status, loc)
		return ctx, nil
	case res.Status >= 400 && res.Status < 500:
		if err := st.refusedBeforeBackend(c, seen, fmt.Sprintf("the call was refused (%d)", res.Status)); err != nil {
			return ctx, err
		}
		st.checked("plain HTTP refused with %d; the backend received nothing", res.Status)
		return ctx, nil
	case res.Status/100 != 2:
		return ctx, st.violation(c, "expected a redirect to HTTPS, a 4xx refusal or the request passed on with the balancer's own values; got %s", res.Outcome())
	}
	if len(seen) != 1 {
		return ctx, st.violation(c, "the plain-HTTP call was answered %d; expected the backend to receive it once, it received %d request(s)", res.Status, len(seen))
	}
	folds := st.contractFolds()
	scheme := st.mustScheme()
	var forged []string
	for _, f := range fieldsOf(seen[0]) {
		if !folds[foldName(f.Name)] {
			continue
		}
		if vh := scheme.Verify; vh != nil && foldName(f.Name) == foldName(vh.Header) && f.Name == strings.ReplaceAll(f.Name, "_", "-") && verifyToken(vh, f.Value) == "NONE" {
			continue
		}
		forged = append(forged, f.Name+": "+abbreviate(f.Value, 60))
	}
	if vh := scheme.Verify; vh != nil {
		if n := countFold(fieldsOf(seen[0]), foldName(vh.Header)); n > 1 {
			forged = append(forged, fmt.Sprintf("%s arrived %d times", vh.Header, n))
		}
	}
	if len(forged) > 0 {
		return ctx, st.violation(c, "a request without TLS reached the backend with contract headers the balancer cannot have set (nobody was verified):\n    %s", strings.Join(forged, "\n    "))
	}
	if scheme.Verify == nil {
		st.checked("plain HTTP passed on (%d) with none of scheme %s's headers", res.Status, scheme.Name)
		return ctx, nil
	}
	st.checked("plain HTTP passed on (%d) with no contract header other than, at most, %s %s", res.Status, scheme.Verify.Header, scheme.Verify.None)
	return ctx, nil
}

// refusedBeforeBackend accepts a refusal only when nothing of the call
// reached the backend.
func (st *scenario) refusedBeforeBackend(c *call, seen []productapi.Echo, how string) error {
	if len(seen) > 0 {
		return st.violation(c, "%s, yet the backend received %d request(s)", how, len(seen))
	}
	return nil
}

func countFold(fields []productapi.RawHeader, fold string) int {
	n := 0
	for _, f := range fields {
		if foldName(f.Name) == fold {
			n++
		}
	}
	return n
}

// protectedRefusedOrVerified checks C20 on the last call (the request for
// the protected host): refused (a TLS alert, or 400, 403, 421 with nothing
// at the backend) or verified (the balancer asked for the certificate the
// caller then presented, and the backend saw SUCCESS with its subject). In
// Optional mode a caller the balancer never asked may also pass on marked
// NONE, as on the protected host itself; never with another identity.
func (st *scenario) protectedRefusedOrVerified(ctx context.Context) (context.Context, error) {
	c, seen, err := st.lastSeen(ctx)
	if err != nil {
		return ctx, err
	}
	res := c.res
	if res.TLSAlert != "" {
		if err := st.refusedBeforeBackend(c, seen, "refused by TLS alert"); err != nil {
			return ctx, err
		}
		st.checked("the request for the protected host was refused in TLS (%s)", res.TLSAlert)
		return ctx, nil
	}
	switch res.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusMisdirectedRequest:
		if err := st.refusedBeforeBackend(c, seen, fmt.Sprintf("refused with %d", res.Status)); err != nil {
			return ctx, err
		}
		st.checked("the request for the protected host was refused with %d; the backend received nothing", res.Status)
		return ctx, nil
	}
	if res.Status/100 != 2 {
		return ctx, st.violation(c, "expected the request for the protected host to be refused (TLS alert, 400, 403, 421) or verified; got %s", res.Outcome())
	}
	if len(seen) != 1 {
		return ctx, st.violation(c, "the request for the protected host was answered %d; the backend received %d request(s), expected one carrying the balancer's verification", res.Status, len(seen))
	}
	h := http.Header(seen[0].Headers)
	scheme := st.mustScheme()
	facts := schemeFacts(scheme, h)
	verified := res.CertificateRequested && res.CertificatesSent > 0
	var verify string
	if scheme.Verify != nil {
		verify = facts[scheme.Verify.Header]
	} else if _, ok := facts[scheme.Cert.Place.String()]; ok {
		verify = "SUCCESS"
	}
	switch {
	case verify == "SUCCESS" && verified:
		id := c.cred
		if id == nil {
			return ctx, st.violation(c, "the backend saw SUCCESS for a call that presented no certificate")
		}
		// The identity the backend acts on: the subject where the scheme
		// sends one, else the certificate.
		place, want, what := scheme.Cert.Place, "certificate sha256:"+id.Fingerprint(), "certificate"
		if scheme.Subject != nil {
			place, want, what = scheme.Subject.Place, certDN(id.Cert.RawSubject), "subject"
		}
		if got := facts[place.String()]; got != want {
			return ctx, st.violation(c, "the protected host passed the request as verified with %s %q, not the presented certificate's %s", place, got, what)
		}
		st.checked("the request for the protected host was verified: the balancer asked for a certificate, the backend saw it verified and its %s", what)
		return ctx, nil
	case st.cfg.Mode == contract.Optional && onlyNone(scheme, facts):
		st.checked("Optional mode: the request for the protected host passed on as a caller without a certificate, with no other contract header")
		return ctx, nil
	}
	return ctx, st.violation(c, "the protected host served a request it never verified (scheme %s at the backend: %v; certificate requested: %v): "+
		"a connection set up for another host, or without SNI, skipped the client-certificate check", scheme.Name, facts, res.CertificateRequested)
}

// onlyNone says whether the backend saw what the scheme sends for a caller
// without a certificate: the verify value's NONE and nothing else.
func onlyNone(s contract.Scheme, facts map[string]string) bool {
	for k, v := range facts {
		if s.Verify == nil || k != s.Verify.Header || v != "NONE" {
			return false
		}
	}
	return s.Verify == nil || facts[s.Verify.Header] == "NONE"
}

// encodedCertSize is the size of the certificate header a balancer makes
// of id in the scheme's encoding.
func (st *scenario) encodedCertSize(id *pki.Identity) int {
	return len(encodeCert(st.mustScheme().Cert.Encoding, id))
}

func (st *scenario) certHeaderLarge(name string) error {
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return err
	}
	n := st.encodedCertSize(id)
	if n <= 8<<10 {
		return fmt.Errorf("the certificate header of %q would be %d bytes, not more than 8 KiB: the scenario does not test what it says", name, n)
	}
	st.checked("the certificate header of %q is %d bytes as %s (more than 8 KiB)", name, n, st.mustScheme().Cert.Encoding)
	return nil
}

// bigCertWholeOrRefused checks C21: refused with a 4xx (or the profile's
// TLS alert) before the backend, or passed on with exactly the presented
// certificate, URL-encoded as C14 says; never a 5xx, a missing or a cut
// header.
func (st *scenario) bigCertWholeOrRefused(ctx context.Context, name, header string) (context.Context, error) {
	c, seen, err := st.lastSeen(ctx)
	if err != nil {
		return ctx, err
	}
	res := c.res
	refusedBy := ""
	switch {
	case res.TLSAlert != "" && st.suite.Profile.Refusal.Shows(res.TLSAlert, 0):
		refusedBy = "TLS alert " + res.TLSAlert
	case res.TLSAlert == "" && res.Status >= 400 && res.Status < 500:
		refusedBy = fmt.Sprintf("HTTP %d", res.Status)
	}
	if refusedBy != "" {
		if err := st.refusedBeforeBackend(c, seen, "refused ("+refusedBy+")"); err != nil {
			return ctx, err
		}
		st.checked("the big certificate was refused before the backend (%s)", refusedBy)
		return ctx, nil
	}
	if res.TLSAlert != "" || res.Status/100 != 2 {
		return ctx, st.violation(c, "expected the big certificate forwarded whole or the call refused with a 4xx; got %s", res.Outcome())
	}
	return st.certForwarded(ctx, name, header)
}
