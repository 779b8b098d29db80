package main

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"os"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/harness"
	"mtlsconform/onboard"
	"mtlsconform/output"
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
still validates, an unknown certificate is still refused; with the partner's key, the API behind it sees
the partner's identity in the header scheme it reads (--scheme, dlb by default).`

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
	image := fs.String("image", envDefault("MTLSCONFORM_IMAGE", os.Getenv("MTLSCONFORM_NGINX_IMAGE")), "run the reference nginx from this `image` instead of the one built offline")
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
	scheme, err := lf.headerScheme()
	if err != nil {
		return err
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
	rep, err := onboard.Run(ctx, onboard.Input{
		Partner: partner, Chain: chain,
		TruststorePath: *truststore, Truststore: currentBytes,
		Out: *out, Prove: !*noProof,
		Harness: harness.Options{Image: *image, Logf: prefixLogger(stderr, "mtlsconform")},
		Live:    live,
		Scheme:  scheme,
	})
	if err != nil {
		return &envError{err}
	}
	rep.Text(stdout)
	files, err := rep.Files()
	if err != nil {
		return &envError{err}
	}
	if err := output.WriteFiles(*reportDir, files); err != nil {
		return &envError{err}
	}
	if rep.Verdict != onboard.Accept {
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
