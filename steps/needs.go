package steps

import (
	"regexp"
	"slices"
)

// The names the feature files give to the partner PKI a target trusts. A
// live target's truststore is what it is: its trusted credential plays
// PartnerLeaf, and scenarios that describe another truststore, or issue
// other certificates under these CAs, need more than a live target gives.
const (
	PartnerRoot    = "Partner Root CA"
	PartnerIssuing = "Partner Issuing CA"
	PartnerLeaf    = "partner-a"
)

// Step patterns that NeedsOf reads as well as registers: one text, so the
// lint cannot drift from the steps.
const (
	stepIntermediate = `^the "([^"]+)" is an intermediate CA under the "([^"]+)"$`
	stepClient       = `^(?:a|an) (expired |not yet valid |serverAuth-only |revoked )?client certificate "([^"]+)"( with an RSA key| with (\d+) DNS names)? issued by the "([^"]+)"$`
)

var (
	needsBackend = []*regexp.Regexp{
		regexp.MustCompile(`^the backend received no request$`),
		regexp.MustCompile(`^every request the backend received carries`),
		regexp.MustCompile(`^the backend saw exactly these client-certificate headers:?$`),
		regexp.MustCompile(`^the backend received the certificate of`),
		regexp.MustCompile(`^the partner calls \w+ /echo\b`),
		// Delivering a new CRL waits until the backend's view of a call changes.
		regexp.MustCompile(`^the CRL of "[^"]+" is updated to`),
	}
	needsReconfigure = []*regexp.Regexp{
		regexp.MustCompile(`^the CRL bundle holds`),
		regexp.MustCompile(`^the CRL of "[^"]+" in the bundle has expired$`),
		regexp.MustCompile(`^the CRL of "[^"]+" is updated to`),
		regexp.MustCompile(`^the verify depth is`),
		regexp.MustCompile(`^the certificate header is`),
	}
	needsOCSP        = regexp.MustCompile(`^the load balancer checks each client certificate with the OCSP responder$|^the OCSP responder (?:for|was asked)`)
	needsPlainHTTP   = regexp.MustCompile(`over plain HTTP`)
	needsPublicHost  = regexp.MustCompile(`for the public host`)
	truststoreStep   = regexp.MustCompile(`^the truststore (?:holds|is read from \.crt files of) ((?:"[^"]+"(?:, )?)+)$`)
	intermediateStep = regexp.MustCompile(stepIntermediate)
	clientStep       = regexp.MustCompile(stepClient)
)

// NeedsOf says which Needs a scenario's steps (its Background's first) ask
// of a target: the reference meets them all, a live target maybe not. The
// feature files declare them as tags, so a scenario that cannot apply is
// known before it runs; a lint test checks the tags against this.
func NeedsOf(steps []string) []Need {
	var needs []Need
	add := func(n Need) {
		if !slices.Contains(needs, n) {
			needs = append(needs, n)
		}
	}
	partnerCAs := map[string]bool{PartnerRoot: true, PartnerIssuing: true}
	for _, text := range steps {
		for _, re := range needsBackend {
			if re.MatchString(text) {
				add(NeedBackendView)
			}
		}
		for _, re := range needsReconfigure {
			if re.MatchString(text) {
				add(NeedReconfigure)
			}
		}
		if needsOCSP.MatchString(text) {
			add(NeedOCSP)
		}
		if needsPlainHTTP.MatchString(text) {
			add(NeedPlainHTTP)
		}
		if needsPublicHost.MatchString(text) {
			add(NeedPublicHost)
		}
		if m := truststoreStep.FindStringSubmatch(text); m != nil {
			got := names(m[1])
			slices.Sort(got)
			if !slices.Equal(got, []string{PartnerIssuing, PartnerRoot}) {
				add(NeedReconfigure)
			}
		}
		if m := intermediateStep.FindStringSubmatch(text); m != nil && partnerCAs[m[2]] {
			partnerCAs[m[1]] = true
			if m[1] != PartnerIssuing || m[2] != PartnerRoot {
				add(NeedNewLeaves)
			}
		}
		if m := clientStep.FindStringSubmatch(text); m != nil && partnerCAs[m[5]] {
			if m[1] != "" || m[3] != "" || m[2] != PartnerLeaf || m[5] != PartnerIssuing {
				add(NeedNewLeaves)
			}
		}
	}
	return needs
}
