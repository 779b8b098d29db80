// Package steps holds the godog step definitions of the conformance suite.
// Steps are thin: they describe credentials to fixtures/pki, ask a Target
// for a load balancer in the scenario's configuration, make the call with
// the harness client and compare what came back. All mutable state of a
// scenario lives in one value made per scenario.
package steps

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/lb"
	"mtlsconform/partner"
)

// Suite is what all scenarios of a run share: read-mostly and safe for
// concurrent scenarios.
type Suite struct {
	Target    Target
	Profile   contract.Profile
	Catalogue *Catalogue
	Recorder  *Recorder
	// Scheme is the header set the backend's view is checked in; empty
	// is the dlb scheme.
	Scheme contract.Scheme
	// TempDir holds the credential files scenarios write and read back
	// (keys 0600); each scenario's folder is removed when it ends.
	TempDir string
}

// scenario is the state of one running scenario.
type scenario struct {
	suite   *Suite
	name    string
	uri     string
	tags    []string
	clauses []string
	started time.Time

	cfg           lb.Config
	modeSet       bool
	trustNames    []string
	crlNames      []string
	expiredCRLs   []string
	crlUpdates    map[string]map[string]bool // CA → certificate → revoked (true) or no longer listed, by C23's deliveries
	endpoint      string                     // set at the first call; the configuration is fixed from then on
	plainEndpoint string
	startedLB     bool // this scenario started its load balancer

	calls    []*call
	inputErr error // the error of the last operator/partner input step
	dir      string

	deviation string // set when a known deviation was observed
	violated  bool   // a check of the contract failed (not the harness)
	naReason  string
	nsReason  string
	unmet     Need     // the capability the target lacked, when known from the tags
	checks    []string // what the passing Then steps verified, for the evidence
}

// checked notes what a Then step verified, in the scenario's evidence.
func (st *scenario) checked(format string, args ...any) {
	st.checks = append(st.checks, fmt.Sprintf(format, args...))
}

type call struct {
	res      *partner.Result
	cred     *pki.Identity // what the call presented when asked
	extra    http.Header
	seen     []productapi.Echo
	seenDone bool
}

// contractError is a failed expectation of the contract, as opposed to a
// harness or environment failure. Only contract errors can be known
// deviations of a profile.
type contractError struct{ msg string }

func (e *contractError) Error() string { return e.msg }

// InitializeScenario registers the steps and hooks for one scenario.
func (s *Suite) InitializeScenario(sc *godog.ScenarioContext) {
	st := &scenario{suite: s}

	sc.Before(func(ctx context.Context, p *godog.Scenario) (context.Context, error) {
		st.name, st.uri, st.started = p.Name, p.Uri, time.Now()
		st.cfg.Scheme = s.scheme()
		for _, t := range p.Tags {
			st.tags = append(st.tags, t.Name)
			if c, ok := contract.ClauseOfTag(t.Name); ok {
				st.clauses = append(st.clauses, c)
			}
		}
		if slices.Contains(st.clauses, "C23") {
			// Its balancer changes in place: one of its own.
			st.cfg.Instance = p.Uri + " " + p.Id
		}
		return ctx, st.applicable()
	})
	sc.StepContext().After(st.afterStep)
	sc.After(st.after)

	sc.Given(re(`^the "([^"]+)" is a root CA$`), st.rootCA)
	sc.Given(re(stepIntermediate), st.intermediateCA)
	sc.Given(re(`^the load balancer requires client certificates$`), st.mode(contract.Mandatory))
	sc.Given(re(`^the load balancer accepts client certificates optionally$`), st.mode(contract.Optional))
	sc.Given(re(`^the truststore holds ((?:"[^"]+"(?:, )?)+)$`), st.truststore)
	sc.Given(re(`^the truststore is read from \.crt files of ((?:"[^"]+"(?:, )?)+)$`), st.truststoreFromCRT)
	sc.Given(re(`^the CRL bundle holds the CRLs of ((?:"[^"]+"(?:, )?)+)$`), st.crlBundle)
	sc.Given(re(`^the CRL of "([^"]+)" in the bundle has expired$`), st.expiredCRL)
	sc.Given(re(`^the verify depth is (\d+)$`), st.verifyDepth)
	sc.When(re(`^the CRL of "([^"]+)" is updated to (revoke|no longer list) "([^"]+)"$`), st.deliverCRL)
	sc.Given(re(`^the certificate header is "([^"]+)"$`), st.certHeader)
	sc.Given(re(`^the load balancer checks each client certificate with the OCSP responder$`), st.useOCSP)
	sc.Given(re(`^the OCSP responder for "([^"]+)" says "([^"]+)" is (good|revoked|unknown)( in a response past its nextUpdate)?$`), st.ocspStatus)
	sc.Given(re(`^the OCSP responder for "([^"]+)" (is down|answers garbage) when asked about "([^"]+)"$`), st.ocspFails)
	sc.Given(re(stepClient), st.clientCert)
	sc.Given(re(`^a self-signed client certificate "([^"]+)"$`), st.selfSigned)

	sc.When(re(`^the partner calls (GET|HEAD|POST) (\S+) without a certificate$`), st.callWithout)
	sc.When(re(`^the partner calls (GET|HEAD|POST) (\S+) without a certificate and the headers:$`), st.callWithoutHeaders)
	sc.When(re(`^the partner calls (GET|HEAD|POST) (\S+) with the certificate "([^"]+)"( and its chain)?$`), st.callWith)
	sc.When(re(`^the partner calls (GET|HEAD|POST) (\S+) with the certificate "([^"]+)" and the headers:$`), st.callWithHeaders)
	sc.When(re(`^the partner calls (GET|HEAD|POST) (\S+) with the (PEM files|PKCS#12 bundle) of "([^"]+)"$`), st.callWithFiles)
	sc.When(re(`^the operator adds a file holding the public key of "([^"]+)" to the truststore$`), st.addPublicKey)
	sc.When(re(`^the partner's PKCS#12 bundle of "([^"]+)" is opened with the wrong password$`), st.wrongP12Password)

	sc.Then(re(`^the response status is (\d+)$`), st.statusIs)
	sc.Then(re(`^the page says "([^"]*)"$`), st.pageSays)
	sc.Then(re(`^the partner is refused$`), st.refused)
	sc.Then(re(`^the backend received no request$`), st.backendReceivedNothing)
	sc.Then(re(`^the response is the product list$`), st.productList)
	sc.Then(re(`^every request the backend received carries X-SSL-Client-Verify "([^"]+)"$`), st.everyVerify)
	sc.Then(re(`^the backend saw exactly these client-certificate headers:$`), st.exactHeaders)
	sc.Then(re(`^the backend received the certificate of "([^"]+)" URL-encoded in the header "([^"]+)"$`), st.certForwarded)
	sc.Then(re(`^the OCSP responder was asked about "([^"]+)"$`), st.ocspAsked)
	sc.Then(re(`^it is refused with an error saying "([^"]+)"$`), st.inputRefused)
	sc.Then(re(`^the error says "([^"]+)"$`), st.errorSays)
	st.registerAttackSteps(sc)
}

// afterStep turns a contract failure in a scenario whose clause the
// profile knows a deviation from, and whose calls show the refusal the
// deviation describes, into a reported deviation; and a not-applicable step
// into a skip with its reason.
func (st *scenario) afterStep(ctx context.Context, _ *godog.Step, _ godog.StepResultStatus, err error) (context.Context, error) {
	var ce *contractError
	if errors.As(err, &ce) {
		st.violated = true
	}
	switch {
	case errors.As(err, &ce):
		d, ok := st.suite.Profile.Deviation(st.tags, st.clauses, st.modes())
		if !ok || !st.showsRefusal(d.Observed) {
			break
		}
		st.deviation = fmt.Sprintf("%s: %s (observed: %s)", d.Where(), d.Reason, ce.msg)
		// The reason goes with the skipped step, where cucumber report
		// tools show a step's attachments.
		ctx = attachReason(ctx, fmt.Sprintf("known deviation of %s from %s", st.suite.Profile.Name, st.deviation))
		return ctx, fmt.Errorf("%w: known deviation of profile %s from %s", godog.ErrSkip, st.suite.Profile.Name, st.deviation)
	case errors.Is(err, contract.ErrNotSupported):
		// The reason is what follows the marker, whatever wrapped it.
		_, st.nsReason, _ = strings.Cut(err.Error(), contract.ErrNotSupported.Error()+": ")
		ctx = attachReason(ctx, "not supported: "+st.nsReason)
		return ctx, fmt.Errorf("%w: %v", godog.ErrSkip, err)
	case errors.Is(err, ErrNotApplicable):
		st.naReason = strings.TrimPrefix(err.Error(), ErrNotApplicable.Error()+": ")
		ctx = attachReason(ctx, "not applicable: "+st.naReason)
		return ctx, fmt.Errorf("%w: %v", godog.ErrSkip, err)
	}
	// godog merges what this hook returns with the step's own error, so
	// anything else is left as it is by returning nil.
	return ctx, nil
}

// attachReason puts why a step was skipped into the cucumber report.
func attachReason(ctx context.Context, reason string) context.Context {
	return godog.Attach(ctx, godog.Attachment{Body: []byte(reason), FileName: "why-skipped.txt", MediaType: "text/plain"})
}

// applicable decides from the scenario's tags, before any step runs,
// whether the target can run it: its mode, and every Need the tags declare.
func (st *scenario) applicable() error {
	caps := st.suite.Target.Capabilities()
	if modes := st.modes(); len(modes) > 0 && !slices.ContainsFunc(modes, func(m contract.Mode) bool { return slices.Contains(caps.Modes, m) }) {
		return NotApplicable("the target runs in %s mode; this scenario needs %s mode", joinModes(caps.Modes), joinModes(modes))
	}
	for _, t := range st.tags {
		if n, ok := NeedOfTag(t); ok {
			if why, lacks := caps.Lacks[n]; lacks {
				st.unmet = n
				return NotApplicable("%s", why)
			}
		}
	}
	return nil
}

func joinModes(modes []contract.Mode) string {
	var s []string
	for _, m := range modes {
		s = append(s, string(m))
	}
	return strings.Join(s, " or ")
}

// showsRefusal says whether one of the scenario's calls was refused this way.
func (st *scenario) showsRefusal(r contract.Refusal) bool {
	for _, c := range st.calls {
		if r.Shows(c.res.TLSAlert, c.res.Status) {
			return true
		}
	}
	return false
}

func (st *scenario) after(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
	if st.dir != "" {
		os.RemoveAll(st.dir)
	}
	res := contract.ScenarioResult{
		URI: st.uri, Name: st.name, Tags: st.tags, Clauses: st.clauses,
		StartedAt: st.started, Duration: time.Since(st.started),
		StartedLoadBalancer: st.startedLB,
		Checks:              st.checks,
		ContactedTarget:     len(st.calls) > 0,
	}
	res.Feature = featureName(st.uri)
	res.Modes = st.modes()
	for _, c := range st.calls {
		ev := evidence(c.res, c.extra)
		ev.BackendSaw, ev.BackendChecked = backendView(c.seen), c.seenDone
		ev.BackendRaw = backendRaw(c.seen)
		res.Calls = append(res.Calls, ev)
	}
	switch {
	case st.deviation != "":
		res.Status, res.Reason = contract.KnownDeviation, st.deviation
	case st.nsReason != "":
		res.Status, res.Reason = contract.NotSupported, st.nsReason
	case st.naReason != "":
		res.Status, res.Reason, res.Unmet = contract.NotApplicable, st.naReason, string(st.unmet)
	case err != nil && !errors.Is(err, godog.ErrSkip):
		res.Status, res.Error, res.Violation = contract.Failed, err.Error(), st.violated
	default:
		// A deviation whose refusal the calls show still holds (the scenario
		// passed on another call); one that names no refusal is gone once
		// the scenario passes.
		if d, ok := st.suite.Profile.Deviation(st.tags, st.clauses, res.Modes); ok && (d.Observed == "" || !st.showsRefusal(d.Observed)) {
			// The only error this hook adds: godog reports the steps' own.
			stale := fmt.Errorf("profile %s lists %s as a known deviation (%s), but the scenario passed: "+
				"the implementation now conforms, so remove the deviation from the profile", st.suite.Profile.Name, d.Where(), d.Reason)
			res.Status, res.Error, res.StaleDeviation = contract.Failed, stale.Error(), true
			st.suite.Recorder.add(res)
			return ctx, stale
		}
		res.Status = contract.Passed
	}
	st.suite.Recorder.add(res)
	return ctx, nil
}

// modes are the scenario's mode tags, or the mode it configured.
func (st *scenario) modes() []contract.Mode {
	var m []contract.Mode
	for _, t := range st.tags {
		if mode, ok := contract.ModeOfTag(t); ok {
			m = append(m, mode)
		}
	}
	if len(m) == 0 && st.modeSet {
		m = []contract.Mode{st.cfg.Mode}
	}
	return m
}

func featureName(uri string) string {
	base := uri[strings.LastIndex(uri, "/")+1:]
	return strings.TrimSuffix(base, ".feature")
}

// --- configuration and credentials ---

func (st *scenario) configurable() error {
	if st.endpoint != "" {
		return errors.New("the load balancer configuration cannot change after the first call in a scenario")
	}
	return nil
}

func (st *scenario) rootCA(name string) error {
	_, err := st.suite.Catalogue.CA(name, "")
	return err
}

func (st *scenario) intermediateCA(name, parent string) error {
	_, err := st.suite.Catalogue.CA(name, parent)
	return err
}

func (st *scenario) mode(m contract.Mode) func() error {
	return func() error {
		if err := st.configurable(); err != nil {
			return err
		}
		st.cfg.Mode, st.modeSet = m, true
		return nil
	}
}

var quoted = regexp.MustCompile(`"([^"]+)"`)

func names(list string) []string {
	var out []string
	for _, m := range quoted.FindAllStringSubmatch(list, -1) {
		out = append(out, m[1])
	}
	return out
}

func (st *scenario) truststore(list string) error {
	if err := st.configurable(); err != nil {
		return err
	}
	var bundle []byte
	for _, n := range names(list) {
		c, err := st.suite.Catalogue.Certificate(n)
		if err != nil {
			return err
		}
		bundle = append(bundle, pki.CertPEM(c)...)
	}
	st.cfg.Truststore, st.trustNames = bundle, names(list)
	return nil
}

// truststoreFromCRT writes each certificate as a DER .crt file, reads the
// files back the way an operator's tooling would, and builds the PEM bundle
// the load balancer loads.
func (st *scenario) truststoreFromCRT(list string) error {
	if err := st.configurable(); err != nil {
		return err
	}
	dir, err := st.tempDir()
	if err != nil {
		return err
	}
	var bundle []byte
	for i, n := range names(list) {
		c, err := st.suite.Catalogue.Certificate(n)
		if err != nil {
			return err
		}
		path := fmt.Sprintf("%s/trust-%d.crt", dir, i)
		if err := pki.WriteFileAtomic(path, c.Raw, 0o644); err != nil {
			return err
		}
		certs, err := pki.LoadCertificates(path)
		if err != nil {
			return err
		}
		bundle = append(bundle, pki.Bundle(certs...)...)
	}
	st.cfg.Truststore, st.trustNames = bundle, names(list)
	return nil
}

func (st *scenario) crlBundle(list string) error {
	if err := st.configurable(); err != nil {
		return err
	}
	st.crlNames = names(list)
	return st.buildCRLBundle()
}

// expiredCRL swaps one CA's CRL in the bundle for one whose nextUpdate has
// passed.
func (st *scenario) expiredCRL(name string) error {
	if err := st.configurable(); err != nil {
		return err
	}
	if !slices.Contains(st.crlNames, name) {
		return fmt.Errorf("the CRL bundle does not hold the CRL of %q", name)
	}
	st.expiredCRLs = append(st.expiredCRLs, name)
	return st.buildCRLBundle()
}

func (st *scenario) buildCRLBundle() error {
	bundle, err := st.crlBundleNow()
	st.cfg.CRL = bundle
	return err
}

// crlBundleNow is the scenario's CRL bundle as it stands: each CA's CRL,
// expired where the scenario said so, updated by what C23's deliveries
// revoked or no longer list.
func (st *scenario) crlBundleNow() ([]byte, error) {
	var bundle []byte
	for _, n := range st.crlNames {
		get := st.suite.Catalogue.CRL
		switch {
		case st.crlUpdates[n] != nil:
			var revoke, unrevoke []string
			for cert, revoked := range st.crlUpdates[n] {
				if revoked {
					revoke = append(revoke, cert)
				} else {
					unrevoke = append(unrevoke, cert)
				}
			}
			get = func(n string) (*x509.RevocationList, error) {
				return st.suite.Catalogue.UpdatedCRL(n, revoke, unrevoke)
			}
		case slices.Contains(st.expiredCRLs, n):
			get = st.suite.Catalogue.ExpiredCRL
		}
		crl, err := get(n)
		if err != nil {
			return nil, err
		}
		bundle = append(bundle, pki.CRLPEM(crl)...)
	}
	return bundle, nil
}

func (st *scenario) verifyDepth(depth int) error {
	if err := st.configurable(); err != nil {
		return err
	}
	if depth < 1 {
		return fmt.Errorf("verify depth %d: use 1 or more", depth)
	}
	st.cfg.VerifyDepth = depth
	return nil
}

func (st *scenario) certHeader(name string) error {
	if err := st.configurable(); err != nil {
		return err
	}
	if _, err := st.suite.scheme().WithCertHeader(name); err != nil {
		return err
	}
	st.cfg.CertHeader = name
	return nil
}

func (st *scenario) clientCert(variant, name, extra, dnsNames, issuer string) error {
	spec := ClientSpec{Issuer: issuer, Variant: strings.TrimSpace(variant)}
	switch {
	case dnsNames != "":
		n, err := strconv.Atoi(dnsNames)
		if err != nil || n < 1 || n > 5000 {
			return fmt.Errorf("%q DNS names: use a number from 1 to 5000", dnsNames)
		}
		spec.DNSNames = n
	case extra != "":
		spec.KeyType = pki.RSA2048
	}
	_, err := st.suite.Catalogue.Client(name, spec)
	return err
}

func (st *scenario) selfSigned(name string) error {
	_, err := st.suite.Catalogue.Client(name, ClientSpec{SelfSigned: true})
	return err
}

func (st *scenario) tempDir() (string, error) {
	if st.dir != "" {
		return st.dir, nil
	}
	dir, err := os.MkdirTemp(st.suite.TempDir, "scenario-")
	if err != nil {
		return "", fmt.Errorf("make a folder for the scenario's files: %w", err)
	}
	st.dir = dir
	return dir, nil
}

// compiled holds every step expression, compiled once per process: given
// a string, godog compiles it at every registration, once per scenario,
// which cost a fifth of a run's CPU.
var compiled sync.Map

func re(expr string) *regexp.Regexp {
	if r, ok := compiled.Load(expr); ok {
		return r.(*regexp.Regexp)
	}
	r, _ := compiled.LoadOrStore(expr, regexp.MustCompile(expr))
	return r.(*regexp.Regexp)
}
