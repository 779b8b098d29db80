package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"

	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
)

const ocspUsage = `mtlsconform ocsp-responder: serve the harness's OCSP responder for a live load balancer (C24).

  mtlsconform ocsp-responder --listen 0.0.0.0:8889 [--ca-cert ca.pem --ca-key ca.key]

Point the balancer's client-certificate OCSP check at http://ADDRESS:8889/ocsp, where ADDRESS is
this machine as the balancer reaches it:
  nginx:  ssl_ocsp leaf; ssl_ocsp_responder http://ADDRESS:8889/ocsp;
  Apache: SSLOCSPEnable leaf, SSLOCSPDefaultResponder http://ADDRESS:8889/ocsp,
          SSLOCSPOverrideResponder on, SSLOCSPUseRequestNonce off (the answers are signed beforehand)
Then run the suite with the --ocsp URL printed at start, and --ca-cert/--ca-key of the CA the
balancer trusts: the run tells the responder what to say about each certificate it issues.
With --ca-cert and --ca-key here too, certificates of that CA the run did not speak of (the
partner's own) are answered good; without, "unauthorized". It serves until interrupted.`

func cmdOCSPResponder(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mtlsconform ocsp-responder", stderr, ocspUsage)
	listen := fs.String("listen", "127.0.0.1:8889", "`address` to serve on (HOST:PORT); the balancer must reach it")
	caCert := fs.String("ca-cert", "", "PEM `file`: a CA whose certificates are answered good unless a run says otherwise")
	caKey := fs.String("ca-key", "", "PEM `file`: that CA's private key (signs the answers)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r := productapi.NewOCSPResponder()
	switch {
	case *caCert != "" && *caKey != "":
		id, err := pki.LoadKeyPair(*caCert, *caKey)
		if err != nil {
			return err
		}
		if !id.Cert.IsCA {
			return usagef("--ca-cert %s is not a CA certificate", *caCert)
		}
		ca := &pki.CA{Identity: *id}
		r.Fallback = func(req *ocsp.Request) ([]byte, error) {
			if !productapi.OCSPNamesIssuer(req, ca.Cert) {
				return ocsp.UnauthorizedErrorResponse, nil
			}
			now := time.Now()
			return ca.OCSPResponse(req.SerialNumber, pki.OCSPGood, now.Add(-5*time.Minute), now.Add(time.Hour), req.HashAlgorithm)
		}
	case *caCert != "" || *caKey != "":
		return usagef("--ca-cert and --ca-key go together")
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	r.Token = hex.EncodeToString(token)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return &envError{fmt.Errorf("listen on %s: %w (choose another --listen address)", *listen, err)}
	}
	host, port, _ := net.SplitHostPort(l.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	self := net.JoinHostPort(host, port)
	fmt.Fprintf(stdout, "OCSP responder on %s%s\n", l.Addr(), productapi.OCSPPath)
	fmt.Fprintf(stdout, "  the balancer asks:  http://ADDRESS:%s%s (ADDRESS: this machine as the balancer reaches it)\n", port, productapi.OCSPPath)
	fmt.Fprintf(stdout, "  run the suite with: --ocsp http://mtlsconform:%s@%s%s\n", r.Token, self, productapi.OCSPPath)
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return &envError{fmt.Errorf("the OCSP responder stopped: %w", err)}
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		fmt.Fprintln(stdout, "OCSP responder stopped")
		return nil
	}
}
