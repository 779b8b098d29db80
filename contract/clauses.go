// Package contract is the one home of the mTLS load balancer contract and
// of what a run says about it: the clause catalogue (C1–C24) with the
// modes each applies to and the core clauses of each mode, the profiles
// that describe how an implementation refuses and where it knowingly
// deviates, the verdicts of scenarios and runs, and the coverage of a run.
//
// It depends on nothing of the project, so every other package may import
// it: the steps fill it, the reports read it.
package contract

import (
	"fmt"
	"regexp"
	"strings"
)

// Mode is the load balancer's client-certificate mode.
type Mode string

const (
	// Mandatory: a request without a trusted certificate is refused.
	Mandatory Mode = "mandatory"
	// Optional: every request is passed on, with the verification result
	// in X-SSL-Client-Verify.
	Optional Mode = "optional"
)

// Modes are the contract's modes, in the order reports show them.
var Modes = []Mode{Mandatory, Optional}

// ParseMode reads a mode name as users type it.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mandatory", "on", "required":
		return Mandatory, nil
	case "optional":
		return Optional, nil
	}
	return "", fmt.Errorf("unknown mode %q: use mandatory or optional", s)
}

// Clause is one promise of the contract.
type Clause struct {
	ID    string
	Title string
}

// Clauses is the contract, in order.
var Clauses = []Clause{
	{"C1", "Mandatory, no certificate: 400 \"No required SSL certificate was sent\", backend not reached"},
	{"C2", "Mandatory, untrusted certificate: 400, backend not reached"},
	{"C3", "Mandatory, expired or not yet valid certificate: 400"},
	{"C4", "Trusted self-signed certificate listed in the truststore: 200 and the product list"},
	{"C5", "CA-signed certificate, truststore with intermediate + root: 200; trust is by CA"},
	{"C6", "Concatenated truststore: every listed client accepted, unlisted refused"},
	{"C7", "Chain completeness: leaf alone refused, leaf + intermediate accepted"},
	{"C8", "Optional, no certificate: backend sees NONE"},
	{"C9", "Optional, trusted certificate: backend sees SUCCESS"},
	{"C10", "Optional, untrusted certificate: backend sees exactly FAILED"},
	{"C11", "Optional, expired certificate: passes with FAILED"},
	{"C12", "Identity headers on success: subject DN, issuer DN, serial"},
	{"C13", "Client-supplied identity headers never reach the backend"},
	{"C14", "Client certificate forwarded URL-encoded in a configurable header"},
	{"C15", "Revoked certificate: 400 (Mandatory) or FAILED (Optional)"},
	{"C16", "Credential formats: PEM, PKCS#12, .crt; a public key is refused"},
	{"C17", "serverAuth-only extended key usage is refused"},
	{"C18", "No caller-sent copy of a contract header reaches the backend in any spelling (case, _ for -, twice)"},
	{"C19", "Plain HTTP: forged contract headers never reach the backend (redirect, refusal or the balancer's own values)"},
	{"C20", "Virtual hosts: a request for the protected host on another host's connection is refused or verified"},
	{"C21", "Big certificates: a certificate header above 8 KiB arrives whole or the call gets a 4xx; never truncated, dropped or 5xx"},
	{"C22", "Both TLS versions: every refusal holds for TLS 1.2 and TLS 1.3 clients"},
	{"C23", "CRL rotation: a new CRL delivered to the running balancer takes effect: a newly revoked certificate refused (Mandatory) or FAILED (Optional), one no longer listed accepted"},
	{"C24", "OCSP: with the balancer asking an OCSP responder, a good answer lets the certificate through; revoked, unknown, no answer, garbage or a response past its nextUpdate refuse it (Mandatory) or mark it FAILED (Optional)"},
}

// Facet is a part of a clause that reports show on a row of their own:
// the clause's scenarios that carry Tag. C22 is one promise made twice,
// once per TLS version, and a balancer may keep it for one and break it
// for the other.
type Facet struct {
	Row    Clause // the row as reports show it: "C22/TLS1.2"
	Clause string // the clause it is part of
	Tag    string // the scenarios' tag
}

// Facets are the clauses' parts shown on rows of their own.
var Facets = []Facet{
	{Row: Clause{"C22/TLS1.2", "TLS 1.2 clients: every refusal holds, a trusted caller passes"}, Clause: "C22", Tag: "@tls12"},
	{Row: Clause{"C22/TLS1.3", "TLS 1.3 clients: every refusal holds (the alert on the first read), a trusted caller passes"}, Clause: "C22", Tag: "@tls13"},
}

// MatrixRow is one row of a clause matrix: a clause, or a facet of one.
type MatrixRow struct {
	Clause Clause
	// Of and Tag pick the scenarios: those of clause Of (carrying Tag,
	// when set).
	Of, Tag string
}

// Covers says whether a scenario counts in this row.
func (m MatrixRow) Covers(r ScenarioResult) bool {
	return contains(r.Clauses, m.Of) && (m.Tag == "" || contains(r.Tags, m.Tag))
}

// MatrixRows are the rows of a clause matrix: every clause in order, each
// followed by its facets.
func MatrixRows() []MatrixRow {
	var rows []MatrixRow
	for _, c := range Clauses {
		rows = append(rows, MatrixRow{Clause: c, Of: c.ID})
		for _, f := range Facets {
			if f.Clause == c.ID {
				rows = append(rows, MatrixRow{Clause: f.Row, Of: c.ID, Tag: f.Tag})
			}
		}
	}
	return rows
}

// LookupClause finds a clause by id.
func LookupClause(id string) (Clause, bool) {
	for _, c := range Clauses {
		if c.ID == id {
			return c, true
		}
	}
	return Clause{}, false
}

// CoreClauses are the promises a run must verify, per mode, before it may
// call a target conformant: each inner list is satisfied by any one of its
// clauses (Mandatory: C1, C2, and C4 or C5; Optional: C8, C9, C10, which
// status-level scenarios check without an echo backend).
var CoreClauses = map[Mode][][]string{
	Mandatory: {{"C1"}, {"C2"}, {"C5", "C4"}},
	Optional:  {{"C8"}, {"C9"}, {"C10"}},
}

var clauseTag = regexp.MustCompile(`^@(C\d+)$`)

// ClauseOfTag returns the clause a Gherkin tag names ("@C11" → "C11").
func ClauseOfTag(tag string) (string, bool) {
	m := clauseTag.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	if _, ok := LookupClause(m[1]); !ok {
		return "", false
	}
	return m[1], true
}

// ModeOfTag returns the mode a Gherkin tag names ("@optional" → Optional).
func ModeOfTag(tag string) (Mode, bool) {
	switch tag {
	case "@" + string(Mandatory):
		return Mandatory, true
	case "@" + string(Optional):
		return Optional, true
	}
	return "", false
}
