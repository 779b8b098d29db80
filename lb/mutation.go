package lb

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"mtlsconform/contract"
)

// Catalogue names every deliberate break (mutation) an implementation may
// offer, and what it breaks in the contract's words. A mutation breaks a
// reference configuration the way a real balancer might be misconfigured,
// so the self-test can prove the suite notices; each implementation says
// how it makes the break (Mutation.How), never what it means again.
var Catalogue = map[string]string{
	"optional-for-mandatory":       "Mandatory mode configured as Optional: callers without a certificate reach the backend (C1)",
	"optional-no-ca-for-mandatory": "Mandatory mode that verifies nothing: every caller reaches the backend (C1, C2)",
	"ssl-c-verify-only":            "Mandatory mode refuses untrusted certificates but not their absence: callers without a certificate reach the backend (C1)",
	"verify-required":              "Mandatory mode as the balancer's own strict verification: a caller without a certificate gets a TLS alert instead of the 400 page (C1)",
	"verify-nothing":               "certificates are asked for but never verified: any certificate passes as SUCCESS (C2, C10)",
	"no-cert-403":                  "a caller without a certificate gets 403 instead of the 400 page (C1)",
	"no-cert-495":                  "a caller without a certificate gets nginx's certificate-error answer (495, sent as 400 \"The SSL certificate error\") (C1)",
	"different-400-text":           "the 400 answer does not say \"No required SSL certificate was sent\" (C1)",
	"unmapped-failed":              "Optional mode passes the balancer's FAILED:<reason> through instead of plain FAILED (C10)",
	"pass-client-verify":           "a client-supplied X-SSL-Client-Verify reaches the backend (C13)",
	"no-dn-header":                 "the subject DN header is not forwarded (C12)",
	"no-serial-header":             "the serial header is not forwarded (C12)",
	"decimal-serial":               "the serial header carries a decimal serial instead of hex (C12)",
	"legacy-dn":                    "the DN headers carry OpenSSL's legacy slash form (/O=…/CN=…) instead of RFC 2253 (C12)",
	"cert-not-encoded":             "the certificate header is not URL-encoded PEM as C14 says (C14)",
	"wrong-cert-header":            "the certificate header carries a certificate other than the client's (C14)",
	"underscores-in-headers":       "client headers spelled with \"_\" (X_SSL_Client_DN) reach the backend beside the balancer's own (C18)",
	"exact-names-only":             "callers' copies are removed by their exact names only: spellings with \"_\" reach the backend (C18)",
	"plain-port-proxies":           "the plain-HTTP listener proxies to the API with the caller's headers instead of redirecting (C19)",
	"verify-by-sni":                "certificates demanded by the SNI the handshake chose instead of the Host the request names (C20)",
	"cert-header-cut-at-8k":        "the certificate header is cut to its first 8 KiB (C21)",
	"tls13-only":                   "TLS 1.3 alone: partners whose clients speak TLS 1.2 are locked out (C22)",
	"crl-ignored":                  "the CRL bundle is not loaded: revoked certificates pass (C15)",
	"ocsp-off":                     "client certificates are not checked with the OCSP responder: revoked ones pass (C24)",
}

// clausesRE reads the clauses a break names at the end of its words.
var clausesRE = regexp.MustCompile(`\((C\d+(?:, C\d+)*)\)$`)

// ClausesOf are the clauses a break's words name at their end ("… (C1,
// C2)"): the promises a suite must see broken.
func ClausesOf(doc string) []string {
	m := clausesRE.FindStringSubmatch(doc)
	if m == nil {
		return nil
	}
	return strings.Split(m[1], ", ")
}

// Mutation is one implementation's way to make a break of the Catalogue,
// as an edit of its rendered configuration (a text, or a structure such as
// Caddy's JSON). Apply refuses when what it edits is not there: a silent
// no-op would make a useless mutant.
type Mutation[T any] struct {
	How   string // how this implementation breaks it; may be empty
	Apply func(T, Config) (T, error)
}

// Mutations are an implementation's mutations by Catalogue name.
type Mutations[T any] map[string]Mutation[T]

// Docs says what each mutation breaks, and how.
func (ms Mutations[T]) Docs() map[string]string {
	out := map[string]string{}
	for name, m := range ms {
		doc := Catalogue[name]
		if doc == "" {
			doc = "(not in the catalogue)"
		}
		if m.How != "" {
			doc += ": " + m.How
		}
		out[name] = doc
	}
	return out
}

// Apply applies the configuration's mutations, in order; an unknown name,
// or one whose edit finds nothing to edit, is an error.
func (ms Mutations[T]) Apply(impl string, v T, c Config) (T, error) {
	for _, name := range c.Mutations {
		m, ok := ms[name]
		if !ok {
			return v, fmt.Errorf("unknown mutation %q of %s (known: %s)", name, impl, strings.Join(slices.Sorted(maps.Keys(ms)), ", "))
		}
		var err error
		if v, err = m.Apply(v, c); err != nil {
			return v, fmt.Errorf("%s mutation %s: %w", impl, name, err)
		}
	}
	return v, nil
}

// Edit is one edit of a configuration.
type Edit[T any] func(T, Config) (T, error)

// Replace replaces old by new in a text, once; old must be there.
func Replace(old, new string) Edit[string] {
	return func(conf string, _ Config) (string, error) {
		if !strings.Contains(conf, old) {
			return "", fmt.Errorf("%q is not in the configuration", strings.TrimSpace(old))
		}
		return strings.Replace(conf, old, new, 1), nil
	}
}

// Chain makes edits one after the other.
func Chain[T any](steps ...Edit[T]) Edit[T] {
	return func(v T, c Config) (T, error) {
		var err error
		for _, s := range steps {
			if v, err = s(v, c); err != nil {
				return v, err
			}
		}
		return v, nil
	}
}

// OnlyIn makes an edit in one mode and leaves the other as it is.
func OnlyIn[T any](mode contract.Mode, f Edit[T]) Edit[T] {
	return func(v T, c Config) (T, error) {
		if c.WithDefaults().Mode != mode {
			return v, nil
		}
		return f(v, c)
	}
}

// WithCRL makes an edit where the configuration has a CRL bundle, and
// leaves one without as it is: there is nothing to ignore.
func WithCRL[T any](f Edit[T]) Edit[T] {
	return func(v T, c Config) (T, error) {
		if len(c.CRL) == 0 {
			return v, nil
		}
		return f(v, c)
	}
}
