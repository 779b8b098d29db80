package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"mtlsconform/fixtures/pki"
	"mtlsconform/partner"
)

// How long a delivered CRL may take to show, and how often the harness
// looks: a reload's new workers take over within a few hundred
// milliseconds on every reference balancer.
// A reload signal that comes while the balancer is still busy with the
// last one may be lost (HAProxy's master re-executing itself): the same
// bundle is delivered again after crlRedeliver without a change.
//
// A reload's old workers keep accepting for a moment while the new ones
// start (nginx): the new answer counts once crlStable calls in a row gave
// it.
const (
	crlSettle    = 5 * time.Second
	crlProbe     = 50 * time.Millisecond
	crlRedeliver = time.Second
	crlStable    = 3
)

// deliverCRL gives the scenario's running balancer its CRL bundle again,
// with the CA's CRL updated to revoke (or no longer list) a certificate
// (C23), the way the target delivers one; then it waits until a call
// with that certificate is answered otherwise than before, for at most
// crlSettle. How the CRL went and when it showed are the scenario's
// evidence; a balancer that never shows it is left to the checks that
// follow.
func (st *scenario) deliverCRL(ctx context.Context, ca, how, name string) (context.Context, error) {
	if st.endpoint == "" {
		return ctx, errors.New("a new CRL is delivered to a running load balancer: call it first in the scenario")
	}
	if !slices.Contains(st.crlNames, ca) {
		return ctx, fmt.Errorf("the CRL bundle does not hold the CRL of %q", ca)
	}
	target, ok := st.suite.Target.(CRLDeliverer)
	if !ok {
		return ctx, NotApplicable("needs a new CRL delivered to the load balancer; the harness cannot change a live target's CRL")
	}
	// The scenario's updates add up: each new CRL is the CA's own list
	// with every certificate revoked since, less every one no longer
	// listed since.
	if st.crlUpdates == nil {
		st.crlUpdates = map[string]map[string]bool{}
	}
	if st.crlUpdates[ca] == nil {
		st.crlUpdates[ca] = map[string]bool{}
	}
	st.crlUpdates[ca][name] = how == "revoke"
	// The running configuration keeps the bundle it started with (the
	// target finds it by it); the new one goes to the balancer only.
	bundle, err := st.crlBundleNow()
	if err != nil {
		return ctx, err
	}
	id, err := st.suite.Catalogue.Identity(name)
	if err != nil {
		return ctx, err
	}
	setup := Setup{Config: st.cfg, TrustNames: st.trustNames, CRLNames: st.crlNames}
	before, err := st.answer(ctx, id)
	if err != nil {
		return ctx, err
	}
	delivered, err := target.DeliverCRL(ctx, setup, bundle)
	if err != nil {
		return ctx, err
	}
	start, last := time.Now(), time.Now()
	probes, deliveries, inRow := 0, 1, 0
	var changed time.Duration
	for {
		now, err := st.answer(ctx, id)
		if err != nil {
			return ctx, err
		}
		probes++
		if now == before {
			inRow = 0
		} else if inRow++; inRow == 1 {
			changed = time.Since(start)
		}
		if inRow == crlStable {
			st.checked("new CRL of %q (%s %q) delivered %d time(s): %s; calls with %q were answered %s before and %s from %v after on (%d probe call(s), the last %d alike)",
				ca, how, name, deliveries, delivered, name, before, now, changed.Round(time.Millisecond), probes, crlStable)
			return ctx, nil
		}
		if time.Since(start) > crlSettle {
			st.checked("new CRL of %q (%s %q) delivered %d time(s): %s; calls with %q were still answered %s %v after (%d probe call(s))",
				ca, how, name, deliveries, delivered, name, now, crlSettle, probes)
			return ctx, nil
		}
		if time.Since(last) > crlRedeliver && inRow == 0 {
			if delivered, err = target.DeliverCRL(ctx, setup, bundle); err != nil {
				return ctx, err
			}
			last, deliveries = time.Now(), deliveries+1
		}
		select {
		case <-ctx.Done():
			return ctx, ctx.Err()
		case <-time.After(crlProbe):
		}
	}
}

// answer is how the balancer answers a call with id, as far as C23 can
// tell apart: refused in TLS, the status, and the verification result the
// backend saw.
func (st *scenario) answer(ctx context.Context, id *pki.Identity) (string, error) {
	res, err := st.suite.Target.Caller().Do(ctx, st.endpoint, partner.Request{Path: "/echo", Credential: id, SendChain: true})
	if err != nil {
		return "", err
	}
	if res.TLSAlert != "" {
		return "refused (" + res.TLSAlert + ")", nil
	}
	seen, err := st.suite.Target.BackendRequests(ctx, res.RequestID)
	if err != nil {
		return "", err
	}
	if len(seen) == 0 {
		return fmt.Sprintf("HTTP %d, nothing at the backend", res.Status), nil
	}
	s := st.mustScheme()
	facts := schemeFacts(s, http.Header(seen[0].Headers))
	verify := "certificate forwarded"
	if s.Verify != nil {
		verify = "verify " + facts[s.Verify.Header]
	} else if _, ok := facts[s.Cert.Place.String()]; !ok {
		verify = "no certificate forwarded"
	}
	return fmt.Sprintf("HTTP %d, %s at the backend", res.Status, verify), nil
}
