package partner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/fixtures/productapi"
	"mtlsconform/lb"
)

// tlsBackend is the echo backend behind a TLS listener in this process:
// what a balancer would be, with the parts of the handshake it saw.
type tlsBackend struct {
	url     string
	api     *productapi.Server
	caller  *Caller
	partner *pki.Identity

	mu     sync.Mutex
	snis   []string
	conns  map[string]bool // remote addresses of the requests
	hosts  []string
	protos []string
}

func startTLSBackend(t *testing.T, auth tls.ClientAuthType) *tlsBackend {
	return startBackendOn(t, auth, false)
}

// startBackendOn serves through productapi.Serve when raw is set, which
// keeps the header lines as received (HTTP/1.1 only).
func startBackendOn(t *testing.T, auth tls.ClientAuthType, raw bool) *tlsBackend {
	t.Helper()
	serverCA := pkitest.MustRootCA(t, "client test server CA")
	srv, err := serverCA.IssueServer("client test", []string{lb.ServerName, lb.PublicHost, "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	partnerCA := pkitest.MustRootCA(t, "client test partner CA")
	partner := pkitest.MustClient(t, partnerCA, "partner")
	clients := x509.NewCertPool()
	clients.AddCert(partnerCA.Cert)
	b := &tlsBackend{api: productapi.New(100), partner: partner, conns: map[string]bool{}}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Cert.Raw}, PrivateKey: srv.Key}},
		ClientAuth:   auth,
		ClientCAs:    clients,
		NextProtos:   []string{"h2", "http/1.1"},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			b.mu.Lock()
			b.snis = append(b.snis, h.ServerName)
			b.mu.Unlock()
			return nil, nil
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.conns[r.RemoteAddr] = true
		b.hosts = append(b.hosts, r.Host)
		b.protos = append(b.protos, r.Proto)
		b.mu.Unlock()
		b.api.ServeHTTP(w, r)
	}), TLSConfig: cfg}
	if raw {
		tl := tls.NewListener(l, cfg)
		go productapi.Serve(tl, hs.Handler)
		t.Cleanup(func() { tl.Close() })
	} else {
		go hs.ServeTLS(l, "", "")
		t.Cleanup(func() { hs.Close() })
	}
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	b.url = "https://" + l.Addr().String()
	b.caller = &Caller{ServerRoots: roots, ServerName: lb.ServerName, Timeout: 5 * time.Second}
	return b
}

func TestCallerPinsTheTLSVersion(t *testing.T) {
	b := startTLSBackend(t, tls.VerifyClientCertIfGiven)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		res, err := b.caller.Do(context.Background(), b.url, Request{Path: "/echo", Credential: b.partner, TLSVersion: v})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 200 || res.TLSVersion != tls.VersionName(v) {
			t.Errorf("pinned %s: status %d over %q", tls.VersionName(v), res.Status, res.TLSVersion)
		}
		if !res.CertificateRequested || res.CertificatesSent != 1 {
			t.Errorf("pinned %s: certificate requested %v, %d sent", tls.VersionName(v), res.CertificateRequested, res.CertificatesSent)
		}
	}
	if _, err := b.caller.Do(context.Background(), b.url, Request{TLSVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 was accepted as a version to pin")
	}
}

// TestCallerRecordsRefusalsOfBothVersions: a refusal is a result with the
// alert, under TLS 1.2 (in the handshake) and TLS 1.3 (after the client's
// side of it, on the first read), never an error.
func TestCallerRecordsRefusalsOfBothVersions(t *testing.T) {
	b := startTLSBackend(t, tls.RequireAndVerifyClientCert)
	stranger := pkitest.MustSelfSigned(t, "stranger")
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, cred := range []*pki.Identity{nil, stranger} {
			for i := 0; i < 5; i++ { // the TLS 1.3 alert races the request's write
				res, err := b.caller.Do(context.Background(), b.url, Request{Path: "/echo", Credential: cred, TLSVersion: v})
				if err != nil {
					t.Fatalf("%s, credential %s: an error instead of a refusal: %v", tls.VersionName(v), Describe(cred), err)
				}
				if res.TLSAlert == "" || res.Status != 0 {
					t.Fatalf("%s, credential %s: %s, want a TLS alert", tls.VersionName(v), Describe(cred), res.Outcome())
				}
			}
		}
	}
}

// TestCallerSendsHeaderNamesAsWritten: a smuggled spelling reaches the
// server as the caller wrote it, and a name listed twice goes twice; the
// backend's echo keeps the names as they came off the wire.
func TestCallerSendsHeaderNamesAsWritten(t *testing.T) {
	b := startBackendOn(t, tls.VerifyClientCertIfGiven, true)
	h := http.Header{
		"X_SSL_Client_DN":     {"CN=admin"},
		"x-ssl-client-verify": {"SUCCESS", "SUCCESS"},
	}
	res, err := b.caller.Do(context.Background(), b.url, Request{Path: "/echo", Header: h})
	if err != nil {
		t.Fatal(err)
	}
	seen := b.api.Requests(res.RequestID)
	if len(seen) != 1 {
		t.Fatalf("backend recorded %d requests", len(seen))
	}
	var raw []string
	for _, f := range seen[0].RawHeaders {
		raw = append(raw, f.Name+": "+f.Value)
	}
	got := strings.Join(raw, "\n")
	for _, want := range []string{"X_SSL_Client_DN: CN=admin", "x-ssl-client-verify: SUCCESS\nx-ssl-client-verify: SUCCESS", "Host: " + lb.ServerName + ":"} {
		if !strings.Contains(got, want) {
			t.Errorf("the backend's raw header lines lack %q:\n%s", want, got)
		}
	}
	if v := seen[0].Headers["X_ssl_client_dn"]; len(v) != 1 {
		t.Errorf("Go's view of the underscore spelling: %v", seen[0].Headers)
	}
}

// TestCallerChoosesSNIAndHost: the handshake asks for the name given (or
// none) while the certificate is still verified, and the Host header
// says what the request wants.
func TestCallerChoosesSNIAndHost(t *testing.T) {
	b := startTLSBackend(t, tls.VerifyClientCertIfGiven)
	ctx := context.Background()
	for _, r := range []Request{
		{Path: "/echo", SNI: lb.PublicHost, Host: lb.ServerName},
		{Path: "/echo", NoSNI: true, Host: lb.ServerName},
		{Path: "/echo"},
	} {
		res, err := b.caller.Do(ctx, b.url, r)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 200 {
			t.Fatalf("%+v: %s", r, res.Outcome())
		}
	}
	want := []string{lb.PublicHost, "", lb.ServerName}
	b.mu.Lock()
	snis, hosts := b.snis, b.hosts
	b.mu.Unlock()
	if strings.Join(snis, ",") != strings.Join(want, ",") {
		t.Errorf("SNIs seen %q, want %q", snis, want)
	}
	for _, h := range hosts {
		if h != lb.ServerName && !strings.HasPrefix(h, lb.ServerName+":") {
			t.Errorf("Host %q, want the server name", h)
		}
	}

	// Without SNI the certificate is still checked, for the server name.
	other := *b.caller
	other.ServerName = "elsewhere.example"
	other.Timeout = time.Second
	if _, err := other.Do(ctx, b.url, Request{Path: "/echo", NoSNI: true}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("a certificate for another name was accepted without SNI: %v", err)
	}
}

// TestCallerReusesOneConnection: requests for two hosts go over one
// HTTP/2 connection.
func TestCallerReusesOneConnection(t *testing.T) {
	b := startTLSBackend(t, tls.VerifyClientCertIfGiven)
	res, err := b.caller.DoOnOneConnection(context.Background(), b.url, []Request{
		{Path: "/echo", SNI: lb.PublicHost, Host: lb.PublicHost, HTTP2: true},
		{Path: "/echo", SNI: lb.PublicHost, Host: lb.ServerName, HTTP2: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Protocol != "HTTP/2.0" || res[1].Protocol != "HTTP/2.0" {
		t.Fatalf("results %d, protocols %q %q", len(res), res[0].Protocol, res[len(res)-1].Protocol)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.conns) != 1 || len(b.snis) != 1 {
		t.Errorf("%d connections, %d handshakes, want one of each", len(b.conns), len(b.snis))
	}
	if strings.Join(b.hosts, ",") != lb.PublicHost+","+lb.ServerName {
		t.Errorf("hosts %q", b.hosts)
	}
}

// TestCallerSaysWhenTheConnectionWasNotKept: a balancer that closes the
// connection after each answer cannot be asked twice on one; the caller
// tries the sequence anew, then says so instead of calling the second
// request's answer the connection's.
func TestCallerSaysWhenTheConnectionWasNotKept(t *testing.T) {
	b := startTLSBackend(t, tls.VerifyClientCertIfGiven)
	_, err := b.caller.DoOnOneConnection(context.Background(), b.url, []Request{
		{Path: "/echo", Header: http.Header{"Connection": {"close"}}},
		{Path: "/echo"},
	})
	if !errors.Is(err, errConnectionNotKept) {
		t.Fatalf("err = %v, want the connection not kept", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.snis) != 2*maxAttempts {
		t.Errorf("%d handshakes, want %d: %d attempts of two", len(b.snis), 2*maxAttempts, maxAttempts)
	}
}

// closingListener completes the TLS handshake of its first n connections
// and closes them without reading a request, as nginx's old workers do at
// the end of a reload to connections still waiting for theirs.
// With midHandshake, it reads the ClientHello and resets the connection
// instead, as Apache httpd's children that a graceful restart ends do.
type closingListener struct {
	net.Listener
	cfg          *tls.Config
	n            int
	midHandshake bool
}

func (l *closingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.n == 0 {
			return c, err
		}
		l.n--
		if l.midHandshake {
			c.Read(make([]byte, 512))
			c.(*net.TCPConn).SetLinger(0) // a reset, not a close
			c.Close()
			continue
		}
		tc := tls.Server(c, l.cfg)
		tc.Handshake()
		tc.Close()
	}
}

// TestCallerCallsAgainAfterAReload: a connection closed after the
// handshake without an answer, or reset during it without an alert, is
// made again where the target reloads, and is the answer where it does
// not.
func TestCallerCallsAgainAfterAReload(t *testing.T) {
	serverCA := pkitest.MustRootCA(t, "reload test server CA")
	srv, err := serverCA.IssueServer("reload test", []string{lb.ServerName})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Cert.Raw}, PrivateKey: srv.Key}}}
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	for _, c := range []struct {
		reloads, midHandshake bool
		want                  error
	}{
		{true, false, nil}, {false, false, errClosedBeforeAnswer},
		{true, true, nil}, {false, true, errResetInHandshake},
	} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), TLSConfig: cfg}
		go hs.ServeTLS(&closingListener{Listener: l, cfg: cfg, n: 2, midHandshake: c.midHandshake}, "", "")
		caller := &Caller{ServerRoots: roots, ServerName: lb.ServerName, Timeout: 5 * time.Second, Reloads: c.reloads}
		res, err := caller.Do(context.Background(), "https://"+l.Addr().String(), Request{Path: "/", TLSVersion: tls.VersionTLS12})
		switch {
		case c.reloads && (err != nil || res.Status != 200 || res.Attempts != 3 || !strings.Contains(res.Sent(), "made 3 times")):
			t.Errorf("reloading target, reset in the handshake %v: %v %+v, want 200 on the third connection, said so", c.midHandshake, err, res)
		case !c.reloads && !errors.Is(err, c.want):
			t.Errorf("target nobody reloads, reset in the handshake %v: %v, want %v reported", c.midHandshake, err, c.want)
		}
		hs.Close()
	}
}
