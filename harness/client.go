package harness

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
	// no HTTP status.
	TLSAlert string
	Status   int
	Header   http.Header
	Body     []byte
	Duration time.Duration
}

// maxBody bounds how much of an answer is kept.
const maxBody = 256 << 10

// Caller makes partner requests with a fresh TLS connection each, so every
// request is a full handshake with the certificate it names.
type Caller struct {
	ServerRoots *x509.CertPool
	ServerName  string
	// InsecureSkipVerify skips checking the load balancer's certificate;
	// only for live targets whose CA the user cannot supply.
	InsecureSkipVerify bool
	Timeout            time.Duration
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
	return fmt.Sprintf("%q (serial %s, sha256 %s…)", id.Cert.Subject.String(), id.Cert.SerialNumber.Text(16), id.Fingerprint()[:16])
}

// Do sends the request to baseURL. It returns an error only when the call
// could not be made or finished for reasons other than the server's refusal:
// nothing listening, a timeout, a server certificate that does not verify.
func (c *Caller) Do(ctx context.Context, baseURL string, r Request) (*Result, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	res := &Result{
		RequestID:  newRequestID(),
		URL:        strings.TrimRight(baseURL, "/") + r.Path,
		Method:     method,
		Credential: Describe(r.Credential),
	}
	tlsCfg := &tls.Config{
		RootCAs:            c.ServerRoots,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		// Always present the credential when asked, whatever CA names the
		// server lists: a partner's client does not pre-filter, and an
		// untrusted certificate must reach the server to be refused.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			res.CertificateRequested = true
			if r.Credential == nil {
				return &tls.Certificate{}, nil
			}
			chain := [][]byte{r.Credential.Cert.Raw}
			if r.SendChain {
				for _, ic := range r.Credential.Intermediates {
					chain = append(chain, ic.Raw)
				}
			}
			res.CertificatesSent = len(chain)
			return &tls.Certificate{Certificate: chain, PrivateKey: r.Credential.Key, Leaf: r.Credential.Cert}, nil
		},
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeouts().Request
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &http.Transport{
		TLSClientConfig:     tlsCfg,
		DisableKeepAlives:   true,
		DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		TLSHandshakeTimeout: timeout,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, res.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, res.URL, err)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set(productapi.RequestIDHeader, res.RequestID)
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		res.Duration = time.Since(start)
		if alert, ok := tlsAlert(err); ok {
			res.TLSAlert = alert
			return res, nil
		}
		return nil, explainCallError(res.URL, err)
	}
	defer resp.Body.Close()
	res.Status, res.Header = resp.StatusCode, resp.Header
	res.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res.Duration = time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", res.URL, err)
	}
	return res, nil
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
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection reset by peer"):
		return fmt.Errorf("call %s: the target accepted the TCP connection, then closed it before answering (%v). "+
			"Check that the load balancer has finished starting (try again in a few seconds), that this port is its TLS listener "+
			"(not a plain-HTTP, PROXY-protocol or health-check port), and that it accepts TLS 1.2 or later", url, err)
	}
	return fmt.Errorf("call %s: %w", url, err)
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
	return fmt.Sprintf("%s %s with client certificate %s (%d certificate(s) presented; %s)",
		r.Method, r.URL, r.Credential, r.CertificatesSent, asked)
}
