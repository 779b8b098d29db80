// Package partner is the partner's side of a call: an HTTPS client that
// presents a chosen client certificate (or none) with full control of the
// TLS version, SNI, Host and header spellings, and what came back,
// TLS alerts included. It knows nothing of containers.
package partner

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"mtlsconform/fixtures/pki"
	"mtlsconform/fixtures/productapi"
)

// Request is one call a partner makes.
type Request struct {
	Method string // GET when empty
	Path   string
	// Header holds extra headers, e.g. a spoofed X-SSL-Client-Verify.
	Header http.Header
	// Credential is the client certificate and key; nil sends none.
	Credential *pki.Identity
	// SendChain sends the intermediates after the leaf; otherwise the
	// leaf goes alone.
	SendChain bool
	// TLSVersion pins the TLS version (tls.VersionTLS12 or
	// tls.VersionTLS13); 0 lets client and server agree (C22).
	TLSVersion uint16
	// SNI is the server name the handshake asks for; empty means the
	// Caller's ServerName. NoSNI sends none. Either way the load
	// balancer's certificate is verified for the name asked for, or for
	// the Caller's ServerName when none is sent (C20).
	SNI   string
	NoSNI bool
	// Host is the Host header (the :authority of HTTP/2); empty means the
	// URL's host.
	Host string
	// HTTP2 offers HTTP/2 before HTTP/1.1 in ALPN; otherwise only
	// HTTP/1.1 is offered. Result.Protocol says what was spoken.
	HTTP2 bool
}

// Result is what happened to a Request. A refusal by TLS alert is a result,
// not an error: some load balancers say no that way.
type Result struct {
	RequestID  string
	URL        string
	Method     string
	Credential string // what was offered: "none" or the subject and fingerprint
	// CertificateRequested is true when the server asked for a client
	// certificate during the handshake.
	CertificateRequested bool
	// CertificatesSent counts the certificates the client presented.
	CertificatesSent int
	// TLSAlert is set when the server refused by TLS alert; then there is
	// no HTTP status. Under TLS 1.3 the alert that refuses a client
	// certificate comes after the client's side of the handshake is done,
	// on the first read: it is recorded here all the same.
	TLSAlert string
	// TLSVersion and Protocol are what was negotiated ("TLS 1.3",
	// "HTTP/2.0"); SNI and Host what the call asked for ("" for no SNI).
	TLSVersion string
	Protocol   string
	SNI        string
	Host       string
	Status     int
	Header     http.Header
	Body       []byte
	Duration   time.Duration
	// Attempts counts the connections the call took: more than one where
	// the connection was closed and the call made again (see
	// Caller.Reloads and DoOnOneConnection). Every attempt carries the same
	// RequestID, so the backend's view holds all of them.
	Attempts int
}

// maxBody bounds how much of an answer is kept.
const maxBody = 256 << 10

// DefaultTimeout bounds one partner request, dial to last byte, where the
// Caller sets none.
const DefaultTimeout = 15 * time.Second

// Caller makes partner requests with a fresh TLS connection each, so every
// request is a full handshake with the certificate it names.
type Caller struct {
	ServerRoots *x509.CertPool
	ServerName  string
	// InsecureSkipVerify skips checking the load balancer's certificate;
	// only for live targets whose CA the user cannot supply.
	InsecureSkipVerify bool
	Timeout            time.Duration
	// Reloads says the target is reloaded while it is called, as the
	// harness's shared balancer is whenever another configuration joins
	// it: a connection it closes after the handshake without answering
	// (nginx's old workers close connections still waiting for their
	// request when a reload ends them) is then the reload's doing, and the
	// call is made again, 100, 200, 300 ms later (up to four attempts). Never set for a balancer
	// under test that nobody reloads: there such a close is its answer.
	Reloads bool
}

// newRequestID names one call; the backend files what it received under it.
func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Describe names a credential for messages and reports, never its key.
func Describe(id *pki.Identity) string {
	if id == nil {
		return "none"
	}
	return fmt.Sprintf("%q (serial %s, sha256 %s…)", pki.DNOfRaw(id.Cert.RawSubject), id.Cert.SerialNumber.Text(16), id.Fingerprint()[:16])
}

// Do sends the request to baseURL. It returns an error only when the call
// could not be made or finished for reasons other than the server's refusal:
// nothing listening, a timeout, a server certificate that does not verify.
func (c *Caller) Do(ctx context.Context, baseURL string, r Request) (*Result, error) {
	res, err := c.DoOnOneConnection(ctx, baseURL, []Request{r})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// DoOnOneConnection sends the requests one after the other over a single
// connection, as a browser or client library reuses one (HTTP/1.1
// keep-alive, or HTTP/2 when the first request asks for it): the first
// request's credential, TLS version and server name make the connection,
// and the others change only their method, path, Host and headers. A
// refusal ends the sequence: the results hold the calls that were made.
//
// A balancer may close an idle connection between two requests of the
// sequence (Apache httpd does on every graceful restart, which another
// configuration's slot may cause at any time): the sequence is then made
// again from the start on a new connection, up to four times in all.
func (c *Caller) DoOnOneConnection(ctx context.Context, baseURL string, reqs []Request) ([]*Result, error) {
	if len(reqs) == 0 {
		return nil, errors.New("no request to send")
	}
	ids := make([]string, len(reqs))
	for i := range ids {
		ids[i] = newRequestID()
	}
	for attempt := 1; ; attempt++ {
		res, err := c.oneConnection(ctx, baseURL, reqs, ids)
		reload := c.Reloads && (errors.Is(err, errClosedBeforeAnswer) || errors.Is(err, errResetInHandshake))
		again := errors.Is(err, errConnectionNotKept) || reload
		if !again || attempt == maxAttempts {
			for _, r := range res {
				r.Attempts = attempt
			}
			if err != nil && attempt > 1 {
				err = fmt.Errorf("%w (the last of %d attempts)", err, attempt)
			}
			return res, err
		}
		if reload {
			// A reload ends in about 100 ms (nginx's master waits that
			// long before it takes the next): the next attempt comes after.
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			case <-ctx.Done():
				return res, err
			}
		}
	}
}

// maxAttempts bounds the connections one call may take.
const maxAttempts = 4

// errConnectionNotKept: the balancer closed the connection before the
// sequence's last request.
var errConnectionNotKept = errors.New("the load balancer did not keep the connection open")

// errClosedBeforeAnswer: the balancer closed the connection after the TLS
// handshake, before any answer.
var errClosedBeforeAnswer = errors.New("closed after the handshake, before answering")

// errResetInHandshake: the balancer closed the connection during the TLS
// handshake without an alert. Apache httpd's children that a graceful
// restart ends do this to a connection they had accepted (seen once in a
// matrix); a balancer that refuses a certificate sends an alert.
var errResetInHandshake = errors.New("closed during the handshake, without a TLS alert")

func (c *Caller) oneConnection(ctx context.Context, baseURL string, reqs []Request, ids []string) ([]*Result, error) {
	first := reqs[0]
	conn := &connInfo{}
	tlsCfg, err := c.tlsConfig(first, conn)
	if err != nil {
		return nil, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout*time.Duration(len(reqs)))
	defer cancel()
	dialer := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		DisableKeepAlives:   len(reqs) == 1,
		MaxConnsPerHost:     1,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: timeout,
		ForceAttemptHTTP2:   first.HTTP2,
		// The handshake is made here, over a connection that keeps a
		// refusing server's last words: a TLS 1.3 server refuses a client
		// certificate after the client has finished its handshake, and may
		// reset the connection while the request is being written; the
		// alert it sent first is still there to be read.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conn.dials++
			tc := tls.Client(&patientConn{Conn: raw}, tlsCfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			conn.state = tc.ConnectionState()
			return tc, nil
		},
	}
	if !first.HTTP2 {
		// An empty, non-nil map keeps the Transport from HTTP/2.
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: noRedirect}
	var out []*Result
	for i, r := range reqs {
		res, err := c.roundTrip(ctx, client, baseURL, r, ids[i], conn)
		if err != nil {
			return nil, err
		}
		if i > 0 && conn.dials > 1 {
			return nil, fmt.Errorf("call %s: %w for request %d of %d (%s), so the requests could not share one connection",
				res.URL, errConnectionNotKept, i+1, len(reqs), res.Outcome())
		}
		out = append(out, res)
		if res.TLSAlert != "" {
			break
		}
	}
	return out, nil
}

// connInfo is what the connection shared by a sequence of requests said.
type connInfo struct {
	requested bool
	sent      int
	dials     int
	state     tls.ConnectionState
}

// tlsConfig is the client side of the handshake for r: its version, its
// server name, its credential whatever CA names the server lists.
func (c *Caller) tlsConfig(r Request, conn *connInfo) (*tls.Config, error) {
	cfg := &tls.Config{
		RootCAs:            c.ServerRoots,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
		// Always present the credential when asked, whatever CA names the
		// server lists: a partner's client does not pre-filter, and an
		// untrusted certificate must reach the server to be refused.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			conn.requested = true
			if r.Credential == nil {
				return &tls.Certificate{}, nil
			}
			chain := [][]byte{r.Credential.Cert.Raw}
			if r.SendChain {
				for _, ic := range r.Credential.Intermediates {
					chain = append(chain, ic.Raw)
				}
			}
			conn.sent = len(chain)
			return &tls.Certificate{Certificate: chain, PrivateKey: r.Credential.Key, Leaf: r.Credential.Cert}, nil
		},
	}
	if r.HTTP2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	switch r.TLSVersion {
	case 0:
	case tls.VersionTLS12, tls.VersionTLS13:
		cfg.MinVersion, cfg.MaxVersion = r.TLSVersion, r.TLSVersion
	default:
		return nil, fmt.Errorf("TLS version %#x: use TLS 1.2 or 1.3", r.TLSVersion)
	}
	if r.SNI != "" {
		cfg.ServerName = r.SNI
	}
	if r.NoSNI {
		// Go sends no SNI for an IP address; the certificate is then
		// verified by hand for the name partners use.
		verifyName := c.ServerName
		cfg.ServerName = "127.0.0.1"
		if !c.InsecureSkipVerify {
			cfg.InsecureSkipVerify = true
			roots := c.ServerRoots
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("the server sent no certificate")
				}
				inter := x509.NewCertPool()
				for _, ic := range cs.PeerCertificates[1:] {
					inter.AddCert(ic)
				}
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: verifyName})
				if err != nil {
					return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
				}
				return nil
			}
		}
	}
	return cfg, nil
}

func (c *Caller) roundTrip(ctx context.Context, client *http.Client, baseURL string, r Request, id string, conn *connInfo) (*Result, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	res := &Result{
		RequestID:  id,
		URL:        strings.TrimRight(baseURL, "/") + r.Path,
		Method:     method,
		Credential: Describe(r.Credential),
	}
	if strings.HasPrefix(res.URL, "https:") {
		res.SNI = c.ServerName
		if r.SNI != "" {
			res.SNI = r.SNI
		}
		if r.NoSNI {
			res.SNI = ""
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, res.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, res.URL, err)
	}
	switch {
	case r.Host != "":
		req.Host = r.Host
	case c.ServerName != "" && req.URL.Hostname() != c.ServerName:
		// A partner calls the balancer by its name: the Host header says
		// that name, as the SNI does, even where the harness dials an
		// address (a balancer that checks SNI against Host answers 421
		// otherwise).
		req.Host = c.ServerName
		if p := req.URL.Port(); p != "" {
			req.Host = net.JoinHostPort(c.ServerName, p)
		}
	}
	res.Host = req.Host
	// Names go out as written, repeated names as often as given: a
	// smuggled spelling (C18) must reach the balancer as the caller wrote it.
	for k, vs := range r.Header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	req.Header.Set(productapi.RequestIDHeader, res.RequestID)
	start := time.Now()
	resp, err := client.Do(req)
	res.CertificateRequested, res.CertificatesSent = conn.requested, conn.sent
	if conn.state.Version != 0 {
		res.TLSVersion = tls.VersionName(conn.state.Version)
	}
	if err != nil {
		res.Duration = time.Since(start)
		if alert, ok := tlsAlert(err); ok {
			res.TLSAlert = alert
			return res, nil
		}
		handshaken := conn.state.Version != 0
		early := closedEarly(err)
		err = explainCallError(res.URL, err)
		switch {
		case early && handshaken:
			err = fmt.Errorf("%w (%w)", err, errClosedBeforeAnswer)
		case early:
			err = fmt.Errorf("%w (%w)", err, errResetInHandshake)
		}
		return nil, err
	}
	defer resp.Body.Close()
	res.Status, res.Header, res.Protocol = resp.StatusCode, resp.Header, resp.Proto
	res.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res.Duration = time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", res.URL, err)
	}
	return res, nil
}

// patientConn hides a failed write from the TLS layer above it, so that
// the read that follows still finds what the server sent before it closed
// the connection (its alert); a read that finds nothing reports the write's
// error.
type patientConn struct {
	net.Conn
	writeErr error
}

func (p *patientConn) Write(b []byte) (int, error) {
	if p.writeErr != nil {
		return len(b), nil
	}
	if _, err := p.Conn.Write(b); err != nil {
		p.writeErr = err
	}
	return len(b), nil
}

func (p *patientConn) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if err != nil && n == 0 && p.writeErr != nil {
		return 0, fmt.Errorf("%w (after the write failed: %v)", err, p.writeErr)
	}
	return n, err
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// tlsAlert recognises a refusal the server sent as a TLS alert.
func tlsAlert(err error) (string, bool) {
	msg := err.Error()
	if i := strings.Index(msg, "remote error: tls: "); i >= 0 {
		return msg[i+len("remote error: "):], true
	}
	return "", false
}

func explainCallError(url string, err error) error {
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &certErr):
		return fmt.Errorf("call %s: the load balancer's own certificate does not verify (%v): pass the CA that issued it, or knowingly skip the check", url, certErr.Err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("call %s: no answer within the request timeout: is the address right and the service up? (%w)", url, err)
	case strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("call %s: connection refused: nothing listens there; check the host and port (%w)", url, err)
	case strings.Contains(err.Error(), "first record does not look like a TLS handshake") || strings.Contains(err.Error(), "server gave HTTP response"):
		return fmt.Errorf("call %s: the target does not speak TLS on that port (%w)", url, err)
	case closedEarly(err):
		return fmt.Errorf("call %s: the target accepted the TCP connection, then closed it before answering (%v). "+
			"Check that the load balancer has finished starting (try again in a few seconds), that this port is its TLS listener "+
			"(not a plain-HTTP, PROXY-protocol or health-check port), and that it accepts TLS 1.2 or later", url, err)
	}
	return fmt.Errorf("call %s: %w", url, err)
}

// closedEarly says whether a call ended with the connection closed or
// reset by the other side, without an answer.
func closedEarly(err error) bool {
	// Go's transport says "server closed idle connection" when the close
	// reaches it before it has written the request (a loaded machine),
	// EOF when after.
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset by peer") || strings.Contains(err.Error(), "server closed idle connection")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Excerpt is the start of the body, for messages.
func (r *Result) Excerpt(n int) string {
	s := strings.Join(strings.Fields(string(r.Body)), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Outcome is a one-line account of what came back.
func (r *Result) Outcome() string {
	if r.TLSAlert != "" {
		return "refused in the TLS handshake: " + r.TLSAlert
	}
	return fmt.Sprintf("HTTP %d, body %q", r.Status, r.Excerpt(160))
}

// Sent is a one-line account of what was sent.
func (r *Result) Sent() string {
	asked := "the server asked for a client certificate"
	if !r.CertificateRequested {
		asked = "the server did not ask for a client certificate"
	}
	if strings.HasPrefix(r.URL, "http:") {
		return fmt.Sprintf("%s %s over plain HTTP (no TLS)%s", r.Method, r.URL, r.hostNote())
	}
	var conn []string
	if r.TLSVersion != "" {
		conn = append(conn, r.TLSVersion)
	}
	if r.SNI == "" {
		conn = append(conn, "no SNI")
	} else {
		conn = append(conn, "SNI "+r.SNI)
	}
	if r.Protocol != "" {
		conn = append(conn, r.Protocol)
	}
	again := ""
	if r.Attempts > 1 {
		again = fmt.Sprintf("; made %d times: the balancer closed the connection before answering", r.Attempts)
	}
	return fmt.Sprintf("%s %s%s with client certificate %s (%d certificate(s) presented; %s; %s%s)",
		r.Method, r.URL, r.hostNote(), r.Credential, r.CertificatesSent, asked, strings.Join(conn, ", "), again)
}

func (r *Result) hostNote() string {
	if r.Host == "" {
		return ""
	}
	return " for Host " + r.Host
}
