package runner

import (
	"errors"
	"sort"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki"
	"mtlsconform/lb"
	"mtlsconform/lb/all"
)

// Mutations of the reference that live above its configuration file: they change what
// the load balancer trusts rather than how it is configured.
var suiteMutations = map[string]string{
	"trust-unknown-ca": "the truststore holds an extra CA the contract does not list (the \"Unknown Root CA\"): its callers pass (C2)",
	crlNotReloaded:     "a new CRL bundle is written over the old one, and the balancer is not reloaded (C23)",
	ocspFailOpen: "the balancer lets a certificate through when its OCSP responder gives no usable answer " +
		"(down, garbage, unknown, past its nextUpdate): emulated by the responder answering good instead (C24)",
}

// crlNotReloaded breaks the delivery of a new CRL, not the configuration:
// it applies where a CRL can be delivered at all.
const crlNotReloaded = "crl-not-reloaded"

// deliversCRL says whether the harness can give a running configuration of
// impl a new CRL: one it runs as a process of its own, with a CRL option.
func deliversCRL(impl lb.Implementation) bool {
	_, separate := impl.(lb.Separate)
	return separate && renders(impl, lb.Config{CRL: []byte("crl\n")})
}

// ocspFailOpen breaks what a balancer makes of a failed OCSP check. No
// reference balancer has a switch for it (nginx and Apache fail closed
// whatever they are told), so the harness's responder plays it: where the
// scenario has it fail, it answers good, which is all a caller of a
// fail-open balancer would see. It applies where OCSP renders at all.
const ocspFailOpen = "ocsp-fail-open"

// checksOCSP says whether impl can check client certificates by OCSP.
func checksOCSP(impl lb.Implementation) bool {
	return renders(impl, lb.Config{OCSPResponder: "http://responder/ocsp"})
}

// renders says whether impl has what a Mandatory configuration with the
// options of cfg asks for: not "not supported".
func renders(impl lb.Implementation, cfg lb.Config) bool {
	cfg.Mode, cfg.Truststore = contract.Mandatory, []byte("trust\n")
	_, err := impl.Render(cfg, lb.ServerFiles{})
	return !errors.Is(err, contract.ErrNotSupported)
}

// Mutation is a deliberate break of the reference load balancer.
type Mutation struct {
	Name, Doc string
}

// Clauses are the clauses the mutation breaks, as the catalogue's words
// name them (lb.Catalogue, or the suite's own).
func (m Mutation) Clauses() []string {
	if d, ok := lb.Catalogue[m.Name]; ok {
		return lb.ClausesOf(d)
	}
	return lb.ClausesOf(suiteMutations[m.Name])
}

// Mutations lists every mutation the default reference (lb/all.Default) accepts, sorted.
func Mutations() []Mutation { return MutationsOf(all.Default()) }

// MutationsOf lists every mutation a reference implementation accepts:
// its own configuration mutations and the suite's, sorted.
func MutationsOf(impl lb.Implementation) []Mutation {
	var out []Mutation
	for n, doc := range impl.Mutations() {
		out = append(out, Mutation{n, doc})
	}
	for n, d := range suiteMutations {
		switch {
		case n == crlNotReloaded && !deliversCRL(impl), n == ocspFailOpen && !checksOCSP(impl):
		default:
			out = append(out, Mutation{n, d})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// MutationNames lists the names of Mutations.
func MutationNames() []string {
	var out []string
	for _, m := range Mutations() {
		out = append(out, m.Name)
	}
	return out
}

// applySuiteMutations edits the setup for the suite-level mutations and
// returns the implementation's own mutations, left for the harness.
func (r *Reference) applySuiteMutations(cfg *lb.Config) ([]string, error) {
	var rest []string
	for _, m := range r.Mutations {
		if _, ok := suiteMutations[m]; !ok {
			rest = append(rest, m)
			continue
		}
		if m == crlNotReloaded || m == ocspFailOpen {
			continue // DeliverCRL's and SetOCSP's
		}
		// trust-unknown-ca
		ca, err := r.cat.CA("Unknown Root CA", "")
		if err != nil {
			return nil, err
		}
		cfg.Truststore = append(append([]byte(nil), cfg.Truststore...), pki.CertPEM(ca.Cert)...)
	}
	return rest, nil
}
