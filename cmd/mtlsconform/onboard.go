package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/harness"
	"mtlsconform/runner"
)

const onboardUsage = `mtlsconform onboard: will this partner's certificate be accepted, and does adding it break anyone else?

  mtlsconform onboard --partner-cert partner.pem --partner-key partner.key \
      --truststore current-truststore.pem --out new-truststore.pem
  mtlsconform onboard --partner-p12 partner.p12 --partner-p12-password-env PW \
      --truststore current.pem --out new.pem --target https://lb.example.com --mode mandatory --server-ca lb-ca.pem

It lints the certificate (format, validity, clientAuth, complete chain, already trusted?), writes the
combined truststore (the current one byte for byte, then what the partner needs) without touching the
input, and proves it on the reference load balancer: the partner gets 200, everything trusted before
still validates, an unknown certificate is still refused.`

// onboardReport is the verdict, printed and written as JSON and Markdown.
type onboardReport struct {
	Partner    string        `json:"partner"`
	Verdict    string        `json:"verdict"` // ACCEPT or REJECT
	Findings   []pki.Finding `json:"findings"`
	Added      []string      `json:"added"`
	Truststore string        `json:"truststore"`
	Output     string        `json:"output,omitempty"`
	Proof      []proofLine   `json:"proof"`
}

type proofLine struct {
	OK     bool   `json:"ok"`
	Check  string `json:"check"`
	Detail string `json:"detail"`
}

func (r *onboardReport) prove(ok bool, check, format string, args ...any) {
	r.Proof = append(r.Proof, proofLine{OK: ok, Check: check, Detail: fmt.Sprintf(format, args...)})
}

func cmdOnboard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform onboard", stderr, onboardUsage)
	partnerCert := fs.String("partner-cert", "", "partner's certificate `file`: PEM (with its intermediates and root if CA-signed) or DER")
	partnerKey := fs.String("partner-key", "", "partner's PEM private key `file` (optional: enables the live 200 check)")
	partnerP12 := fs.String("partner-p12", "", "partner's PKCS#12 `file` instead of --partner-cert/--partner-key")
	p12Pass := fs.String("partner-p12-password", "", "its password (visible in the process list: prefer --partner-p12-password-env)")
	p12PassEnv := fs.String("partner-p12-password-env", "", "environment `variable` holding the PKCS#12 password")
	truststore := fs.String("truststore", "", "the current truststore bundle `file` (PEM)")
	out := fs.String("out", "", "`file` to write the combined truststore to (never the input file); without it nothing is written")
	reportDir := fs.String("report", "out", "`folder` for onboard-report.md and onboard-report.json")
	image := fs.String("nginx-image", envDefault("MTLSCONFORM_NGINX_IMAGE", harness.DefaultNginxImage), "reference load balancer `image`")
	noProof := fs.Bool("no-proof", false, "lint and write only; do not start the reference load balancer")
	var lf liveFlags
	lf.register(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *truststore == "" {
		return usagef("--truststore is required: the current truststore bundle the partner is added to")
	}
	if *out != "" {
		if same, err := sameFile(*out, *truststore); err != nil {
			return &envError{err}
		} else if same {
			return usagef("--out must not be the input truststore: onboarding never touches the input; write a new file and swap it in yourself")
		}
	}
	partner, chain, err := readPartner(*partnerCert, *partnerKey, *partnerP12, *p12Pass, *p12PassEnv)
	if err != nil {
		return err
	}
	currentBytes, err := pki.ReadFile(*truststore)
	if err != nil {
		return &envError{err}
	}
	current, err := pki.ParseCertificates(*truststore, currentBytes)
	if err != nil {
		return &envError{err}
	}
	var live *runner.LiveOptions
	if lf.target != "" {
		if lf.mode == "" {
			lf.mode = string(contract.Mandatory)
		}
		o, err := lf.options(stderr)
		if err != nil {
			return err
		}
		live = &o
	}

	leaf := chain[0]
	rep := &onboardReport{Partner: leaf.Subject.String(), Truststore: *truststore}
	lint := pki.Lint(pki.LintInput{Leaf: leaf, Chain: chain[1:], Truststore: current})
	rep.Findings = lint.Findings
	for _, c := range lint.Add {
		rep.Added = append(rep.Added, c.Subject.String())
	}
	newBundle := pki.AppendToBundle(currentBytes, lint.Add)
	if lint.OK() && *out != "" {
		if err := pki.WriteFileAtomic(*out, newBundle, 0o644); err != nil {
			return &envError{err}
		}
		rep.Output = *out
	}
	if lint.OK() && !*noProof {
		if err := proveOnReference(ctx, rep, partner, current, newBundle, *image, stderr); err != nil {
			return &envError{err}
		}
	}
	if live != nil && partner != nil {
		checkLive(ctx, rep, *live, partner)
	} else if live != nil {
		rep.prove(false, "live target", "needs the partner's key (--partner-key or --partner-p12) to call %s as the partner", lf.target)
	}
	rep.Verdict = "ACCEPT"
	if !lint.OK() {
		rep.Verdict = "REJECT"
	}
	for _, p := range rep.Proof {
		if !p.OK {
			rep.Verdict = "REJECT"
		}
	}
	printOnboard(stdout, rep)
	if err := writeOnboardReport(*reportDir, rep); err != nil {
		return &envError{err}
	}
	if rep.Verdict != "ACCEPT" {
		return errChecksFailed
	}
	return nil
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, nil
	}
	return os.SameFile(sa, sb), nil
}

// readPartner returns the partner's identity when a key is known (nil
// otherwise) and the certificate chain, leaf first.
func readPartner(certPath, keyPath, p12Path, pass, passEnv string) (*pki.Identity, []*x509.Certificate, error) {
	switch {
	case p12Path != "" && (certPath != "" || keyPath != ""):
		return nil, nil, usagef("give the partner's credential as --partner-p12 or as --partner-cert [--partner-key], not both")
	case p12Path != "":
		if passEnv != "" {
			v, ok := os.LookupEnv(passEnv)
			if !ok {
				return nil, nil, usagef("--partner-p12-password-env names %s, which is not set", passEnv)
			}
			pass = v
		}
		id, err := pki.LoadPKCS12(p12Path, pass)
		if err != nil {
			return nil, nil, &envError{err}
		}
		return id, id.Chain(), nil
	case certPath == "":
		return nil, nil, usagef("--partner-cert (or --partner-p12) is required")
	}
	certs, err := pki.LoadCertificates(certPath)
	if err != nil {
		return nil, nil, &envError{err}
	}
	if keyPath == "" {
		return nil, certs, nil
	}
	id, err := pki.LoadKeyPair(certPath, keyPath)
	if err != nil {
		return nil, nil, &envError{err}
	}
	return id, certs, nil
}

// proveOnReference starts the reference load balancer with the new bundle
// and checks the three promises of onboarding.
func proveOnReference(ctx context.Context, rep *onboardReport, partner *pki.Identity, current []*x509.Certificate, newBundle []byte, image string, stderr io.Writer) error {
	newCerts, err := pki.ParseCertificates("new truststore", newBundle)
	if err != nil {
		return fmt.Errorf("the combined truststore does not parse back: %w", err)
	}
	before, after := validates(current, current), validates(current, newCerts)
	broken := 0
	for i, c := range current {
		if before[i] == nil && after[i] != nil {
			broken++
			rep.prove(false, "existing trust kept", "%s validated before and no longer does: %v", c.Subject.String(), after[i])
		}
	}
	if broken == 0 {
		rep.prove(true, "existing trust kept", "all %d certificate(s) of the current truststore validate in the new one as they did before, kept byte for byte", len(current))
	}
	env, err := harness.Start(ctx, harness.Options{Image: image, Logf: prefixLogger(stderr, "mtlsconform")})
	if err != nil {
		return err
	}
	defer env.Close(context.WithoutCancel(ctx))
	lb, err := env.LoadBalancer(ctx, harness.LBConfig{Mode: contract.Mandatory, Truststore: newBundle})
	if err != nil {
		return fmt.Errorf("the reference load balancer did not start with the new truststore: %w", err)
	}
	rep.prove(true, "bundle loads", "the reference load balancer (nginx, Mandatory mode) starts and serves with the new truststore")
	caller := env.Caller()
	if partner != nil {
		res, err := caller.Do(ctx, lb.URL, harness.Request{Path: productapi.ProductsPath, Credential: partner, SendChain: true})
		if err != nil {
			return err
		}
		rep.prove(res.Status == http.StatusOK, "partner accepted", "the partner's credential got %s", res.Outcome())
	} else {
		rep.prove(true, "partner accepted", "not called: no partner key given (--partner-key or --partner-p12); the chain was verified offline")
	}
	stranger, err := pki.SelfSignedClient("mtlsconform onboarding stranger")
	if err != nil {
		return err
	}
	res, err := caller.Do(ctx, lb.URL, harness.Request{Path: productapi.ProductsPath, Credential: stranger})
	if err != nil {
		return err
	}
	rep.prove(res.Status == http.StatusBadRequest, "stranger refused", "an unknown self-signed certificate got %s", res.Outcome())
	none, err := caller.Do(ctx, lb.URL, harness.Request{Path: productapi.ProductsPath})
	if err != nil {
		return err
	}
	rep.prove(none.Status == http.StatusBadRequest && strings.Contains(string(none.Body), "No required SSL certificate was sent"),
		"no certificate refused", "a call without a certificate got %s", none.Outcome())
	return nil
}

// validates reports, for each certificate, whether it builds to a
// self-signed anchor among bundle (nil) or why not.
func validates(certs, bundle []*x509.Certificate) []error {
	out := make([]error, len(certs))
	for i, c := range certs {
		out[i] = pki.Validates(c, bundle)
	}
	return out
}

// checkLive calls the live endpoint as the partner: is the partner trusted
// there (already, or once the new truststore is deployed)?
func checkLive(ctx context.Context, rep *onboardReport, o runner.LiveOptions, partner *pki.Identity) {
	o.Credential = partner
	live, err := runner.NewLive(o)
	if err != nil {
		rep.prove(false, "live target", "%v", err)
		return
	}
	res, err := live.Caller().Do(ctx, o.URL, harness.Request{Path: o.APIPath, Credential: partner, SendChain: true})
	switch {
	case err != nil:
		rep.prove(false, "live target", "%v", err)
	case res.Status == http.StatusOK:
		rep.prove(true, "live target", "%s accepted the partner: %s", o.URL, res.Outcome())
	default:
		rep.prove(false, "live target", "%s did not accept the partner (%s): is the new truststore deployed there?", o.URL, res.Outcome())
	}
}

func printOnboard(w io.Writer, r *onboardReport) {
	fmt.Fprintf(w, "Partner: %s\n", r.Partner)
	for _, f := range r.Findings {
		fmt.Fprintf(w, "  %-7s %s\n", strings.ToUpper(string(f.Severity)), f.Message)
	}
	if len(r.Added) > 0 {
		fmt.Fprintf(w, "Truststore gains: %s\n", strings.Join(r.Added, "; "))
	}
	if r.Output != "" {
		fmt.Fprintf(w, "Wrote %s (the current truststore %s unchanged, then the additions)\n", r.Output, r.Truststore)
	}
	for _, p := range r.Proof {
		mark := "ok  "
		if !p.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", mark, p.Check, p.Detail)
	}
	fmt.Fprintf(w, "Verdict: %s\n", r.Verdict)
}

func writeOnboardReport(dir string, r *onboardReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make report folder %s: %w", dir, err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "## Onboarding: %s\n\n**Verdict: %s**\n\n", r.Partner, r.Verdict)
	printOnboard(&md, r)
	if err := pki.WriteFileAtomic(filepath.Join(dir, "onboard-report.json"), js, 0o644); err != nil {
		return err
	}
	return pki.WriteFileAtomic(filepath.Join(dir, "onboard-report.md"), md.Bytes(), 0o644)
}
