package main

import (
	"bytes"
	"context"
	"crypto"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/steps"
)

// lockedBuffer is a bytes.Buffer a command writes to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestOCSPResponderCommand(t *testing.T) {
	ca := pkitest.MustRootCA(t, "Responder Test CA")
	told := pkitest.MustClient(t, ca, "told-revoked")
	untold := pkitest.MustClient(t, ca, "untold")
	stranger := pkitest.MustRootCA(t, "Stranger CA")
	strangerLeaf := pkitest.MustClient(t, stranger, "stranger")
	files, err := ca.WriteFiles(t.TempDir(), "ca", "")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"ocsp-responder", "--listen", "127.0.0.1:0", "--ca-cert", files.Cert, "--ca-key", files.Key}, &out, &errOut)
	}()
	flagRE := regexp.MustCompile(`--ocsp (http://\S+)`)
	var ocspURL string
	for deadline := time.Now().Add(10 * time.Second); ocspURL == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := flagRE.FindStringSubmatch(out.String()); m != nil {
			ocspURL = m[1]
		}
	}
	if ocspURL == "" {
		t.Fatalf("no --ocsp URL printed; stdout %q, stderr %q", out.String(), errOut.String())
	}
	u, err := url.Parse(ocspURL)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := u.User.Password()
	base := "http://" + u.Host
	if strings.Contains(errOut.String(), token) {
		t.Error("the admin token was written to stderr")
	}

	// The admin path wants the token.
	say := steps.OCSPSay{CA: ca, Cert: told.Cert, Behaviour: productapi.OCSPRespond, Status: pki.OCSPRevoked}
	answer, err := say.Answer(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (productapi.OCSPAdmin{Base: base}).Set(ctx, []productapi.OCSPAnswer{answer}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("an upload without the token: %v, want 401", err)
	}
	if err := (productapi.OCSPAdmin{Base: base, Token: token}).Set(ctx, []productapi.OCSPAnswer{answer}); err != nil {
		t.Fatal(err)
	}

	ask := func(id *pki.Identity, issuer *pki.CA) (*ocsp.Response, []byte) {
		t.Helper()
		req, err := pki.OCSPRequest(id.Cert, issuer.Cert, crypto.SHA1)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(base+productapi.OCSPPath, "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		parsed, _ := ocsp.ParseResponseForCert(body, id.Cert, issuer.Cert)
		return parsed, body
	}
	if r, _ := ask(told, ca); r == nil || r.Status != ocsp.Revoked {
		t.Errorf("the certificate the run said is revoked: %+v", r)
	}
	if r, _ := ask(untold, ca); r == nil || r.Status != ocsp.Good {
		t.Errorf("a certificate of --ca-cert nobody spoke of: %+v, want good", r)
	}
	if _, body := ask(strangerLeaf, stranger); !bytes.Equal(body, ocsp.UnauthorizedErrorResponse) {
		t.Errorf("another CA's certificate got %x, want unauthorized", body)
	}

	cancel()
	select {
	case c := <-code:
		if c != exitOK || !strings.Contains(out.String(), "OCSP responder stopped") {
			t.Errorf("interrupted: exit %d, stdout %q", c, out.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the responder did not stop when interrupted")
	}
}

func TestOCSPResponderCommandBadInput(t *testing.T) {
	ca := pkitest.MustRootCA(t, "Responder Test CA")
	leaf := pkitest.MustClient(t, ca, "leaf")
	dir := t.TempDir()
	caFiles, _ := ca.WriteFiles(dir, "ca", "")
	leafFiles, _ := leaf.WriteFiles(dir, "leaf", "")
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--ca-cert", caFiles.Cert}, "--ca-cert and --ca-key go together"},
		{[]string{"--ca-cert", leafFiles.Cert, "--ca-key", leafFiles.Key}, "is not a CA certificate"},
		{[]string{"--ca-cert", dir + "/missing.pem", "--ca-key", caFiles.Key}, "missing.pem"},
		{[]string{"--listen", "256.0.0.1:1"}, "choose another --listen address"},
	} {
		code, _, stderr := cli(t, append([]string{"ocsp-responder"}, tt.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tt.says) {
			t.Errorf("%v: exit %d, stderr %q; want 2 saying %q", tt.args, code, stderr, tt.says)
		}
	}
}
