package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cucumber/godog"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/partner"
)

// endpointFor fixes the scenario's configuration and returns the load
// balancer that runs it, with every listener it has.
func (st *scenario) endpointFor(ctx context.Context) (Endpoint, error) {
	if st.endpoint != "" {
		return Endpoint{URL: st.endpoint, PlainURL: st.plainEndpoint}, nil
	}
	if !st.modeSet {
		return Endpoint{}, errors.New("the scenario never says whether the load balancer requires client certificates or accepts them optionally")
	}
	if len(st.cfg.Truststore) == 0 {
		return Endpoint{}, errors.New("the scenario never says what the truststore holds")
	}
	ep, err := st.suite.Target.Endpoint(ctx, Setup{Config: st.cfg, TrustNames: st.trustNames, CRLNames: st.crlNames})
	if err != nil {
		return Endpoint{}, err
	}
	st.endpoint, st.plainEndpoint, st.startedLB = ep.URL, ep.PlainURL, ep.Started
	return ep, nil
}

func (st *scenario) do(ctx context.Context, method, path string, id *pki.Identity, chain bool, extra http.Header) (context.Context, error) {
	return st.send(ctx, false, partner.Request{Method: method, Path: path, Header: extra, Credential: id, SendChain: chain})
}

// send makes the calls of one When step over one connection and records
// each; base picks the listener (TLS or plain) of the scenario's endpoint.
func (st *scenario) send(ctx context.Context, plain bool, reqs ...partner.Request) (context.Context, error) {
	for i := range reqs {
		var err error
		if reqs[i].Path, err = st.suite.Target.MapPath(reqs[i].Path); err != nil {
			return ctx, err
		}
	}
	ep, err := st.endpointFor(ctx)
	if err != nil {
		return ctx, err
	}
	base := ep.URL
	if plain {
		if ep.PlainURL == "" {
			return ctx, NotApplicable("the target has no plain-HTTP listener the harness knows of")
		}
		base = ep.PlainURL
	}
	results, err := st.suite.Target.Caller().DoOnOneConnection(ctx, base, reqs)
	if err != nil {
		return ctx, err
	}
	for i, res := range results {
		ctx = st.record(ctx, res, reqs[i].Header)
		// The connection's credential is the first request's.
		st.calls[len(st.calls)-1].cred = reqs[0].Credential
	}
	return ctx, nil
}

// record keeps a call and attaches its evidence to the cucumber report.
func (st *scenario) record(ctx context.Context, res *partner.Result, extra http.Header) context.Context {
	st.calls = append(st.calls, &call{res: res, extra: extra})
	body, _ := json.MarshalIndent(evidence(res, extra), "", "  ")
	return godog.Attach(ctx, godog.Attachment{Body: body, FileName: "call.json", MediaType: "application/json"})
}

func (st *scenario) callWithout(ctx context.Context, method, path string) (context.Context, error) {
	return st.do(ctx, method, path, nil, false, nil)
}

func (st *scenario) callWithoutHeaders(ctx context.Context, method, path string, table *godog.Table) (context.Context, error) {
	h, err := st.headerTable(table)
	if err != nil {
		return ctx, err
	}
	return st.do(ctx, method, path, nil, false, h)
}

func (st *scenario) callWith(ctx context.Context, method, path, name, chain string) (context.Context, error) {
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return ctx, err
	}
	return st.do(ctx, method, path, id, chain != "", nil)
}

func (st *scenario) callWithHeaders(ctx context.Context, method, path, name string, table *godog.Table) (context.Context, error) {
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return ctx, err
	}
	h, err := st.headerTable(table)
	if err != nil {
		return ctx, err
	}
	return st.do(ctx, method, path, id, false, h)
}

// p12Password protects the PKCS#12 files scenarios write; it guards
// nothing real (the keys live for one run) and is not a secret.
const p12Password = "conformance"

// callWithFiles writes the credential the way a partner holds it (PEM
// certificate chain + key, or a .p12), reads it back through the same
// readers the CLI uses, and calls with what was read.
func (st *scenario) callWithFiles(ctx context.Context, method, path, kind, name string) (context.Context, error) {
	id, dir, err := st.identityAndDir(name)
	if err != nil {
		return ctx, err
	}
	files, err := id.WriteFiles(dir, filepath.Base(name), p12Password)
	if err != nil {
		return ctx, err
	}
	var loaded *pki.Identity
	if kind == "PEM files" {
		loaded, err = pki.LoadKeyPair(files.Chain, files.Key)
	} else {
		loaded, err = pki.LoadPKCS12(files.P12, p12Password)
	}
	if err != nil {
		return ctx, err
	}
	if !loaded.Cert.Equal(id.Cert) {
		return ctx, fmt.Errorf("the %s of %q read back as another certificate", kind, name)
	}
	return st.do(ctx, method, path, loaded, true, nil)
}

// identityAndDir finds a credential and the scenario's folder for its files.
func (st *scenario) identityAndDir(name string) (*pki.Identity, string, error) {
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return nil, "", err
	}
	dir, err := st.tempDir()
	return id, dir, err
}

func (st *scenario) addPublicKey(name string) error {
	id, dir, err := st.identityAndDir(name)
	if err != nil {
		return err
	}
	pub, err := id.PublicKeyPEM()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, name+"-public.pem")
	if err := pki.WriteFileAtomic(path, pub, 0o644); err != nil {
		return err
	}
	_, st.inputErr = pki.LoadCertificates(path)
	return nil
}

func (st *scenario) wrongP12Password(name string) error {
	id, dir, err := st.identityAndDir(name)
	if err != nil {
		return err
	}
	files, err := id.WriteFiles(dir, name, p12Password)
	if err != nil {
		return err
	}
	_, st.inputErr = pki.LoadPKCS12(files.P12, p12Password+"-wrong")
	return nil
}

var placeholder = regexp.MustCompile(`^\{(serial|certificate|subject|issuer) of "([^"]+)"\}$`)

// resolve turns a placeholder into the named certificate's value: its
// serial (normalised hex), subject or issuer DN (canonical form), or, for a
// certificate, what encode makes of it.
func (st *scenario) resolve(value string, encode func(*pki.Identity) string) (string, error) {
	m := placeholder.FindStringSubmatch(value)
	if m == nil {
		return value, nil
	}
	id, err := st.suite.Catalogue.Identity(m[2])
	if err != nil {
		return "", err
	}
	switch m[1] {
	case "certificate":
		return encode(id), nil
	case "subject":
		return certDN(id.Cert.RawSubject), nil
	case "issuer":
		return certDN(id.Cert.RawIssuer), nil
	}
	return normalSerial(id.Cert.SerialNumber.Text(16)), nil
}

// headerTable reads a two-column table of header names and values that a
// client sends. A row naming a fact by its dlb header (in any spelling) is
// forged the way the scheme in force carries that fact: under the
// scheme's header, spelled alike, with {certificate of "x"} in the
// scheme's encoding; facts in XFCC fields become one element per header
// spelling. A fact the scheme does not carry cannot be forged and is left
// out.
func (st *scenario) headerTable(t *godog.Table) (http.Header, error) {
	s := st.mustScheme()
	h := http.Header{}
	xfcc := map[string][]string{} // folded header → field=value pairs
	var xfccOrder []string        // the first spelling of each
	spellingOf := map[string]string{}
	for _, row := range t.Rows {
		if len(row.Cells) != 2 {
			return nil, errors.New("a header table has two columns: name and value")
		}
		name, value := row.Cells[0].Value, row.Cells[1].Value
		fact, isFact := contract.FactOf(strings.ReplaceAll(name, "_", "-"), st.cfg.CertHeader)
		value, err := st.resolve(value, func(id *pki.Identity) string { return encodeCert(s.Cert.Encoding, id) })
		if err != nil {
			return nil, err
		}
		if !isFact {
			h[name] = append(h[name], value)
			continue
		}
		p, sent := s.Place(fact)
		if !sent {
			continue
		}
		if fact == contract.FactVerify {
			// The dlb's words become the scheme's; anything else is forged as written.
			if v, ok := map[string]string{"SUCCESS": s.Verify.Success, "NONE": s.Verify.None, "FAILED": s.Verify.Failed}[value]; ok {
				value = v
			}
		}
		spelled := respell(name, p.Header)
		if p.Field != "" {
			// One element per header as a backend reads it (CGI folds case
			// and _): the fields of rows spelled alike go together.
			fold := foldName(spelled)
			if _, ok := xfcc[fold]; !ok {
				xfccOrder = append(xfccOrder, fold)
				spellingOf[fold] = spelled
			}
			xfcc[fold] = append(xfcc[fold], p.Field+`="`+strings.ReplaceAll(value, `"`, `\"`)+`"`)
			continue
		}
		// As spelled, and as often as listed: C18 sends smuggled spellings.
		h[spelled] = append(h[spelled], value)
	}
	for _, fold := range xfccOrder {
		name := spellingOf[fold]
		h[name] = append(h[name], strings.Join(xfcc[fold], ";"))
	}
	return h, nil
}
