package contract

import "testing"

// measured is a profile with deviations like a measured one's.
var measured = Profile{
	Name: "measured", Refusal: RefuseHTTP400,
	Deviations: []Deviation{
		{Clause: "C11", Observed: RefuseHTTP400, Reason: "expired certificates get 400"},
		{Clause: "C15", Mode: Optional, Observed: RefuseHTTP400, Reason: "revoked certificates get 400"},
	},
}

func TestProfileDeviation(t *testing.T) {
	p := measured
	if d, ok := p.Deviation(nil, []string{"C11"}, []Mode{Optional}); !ok || d.Where() != "C11" {
		t.Errorf("C11: %q %v", d.Where(), ok)
	}
	if _, ok := p.Deviation(nil, []string{"C15"}, []Mode{Mandatory}); ok {
		t.Error("C15 in Mandatory mode counted as a deviation; only Optional is")
	}
	if d, ok := p.Deviation(nil, []string{"C15"}, []Mode{Optional}); !ok || d.Where() != "C15 in optional mode" {
		t.Errorf("C15 optional: %q %v", d.Where(), ok)
	}
	if _, err := LookupProfile("nope"); err == nil {
		t.Error("unknown profile accepted")
	}
}

func TestRefusalShows(t *testing.T) {
	type outcome struct {
		alert  string
		status int
	}
	alert, page, ok := outcome{alert: "tls: certificate required"}, outcome{status: 400}, outcome{status: 200}
	for _, tt := range []struct {
		r    Refusal
		res  outcome
		want bool
	}{
		{RefuseTLSAlert, alert, true}, {RefuseTLSAlert, page, false}, {RefuseTLSAlert, ok, false},
		{RefuseHTTP400, page, true}, {RefuseHTTP400, alert, false}, {RefuseHTTP400, ok, false},
	} {
		if got := tt.r.Shows(tt.res.alert, tt.res.status); got != tt.want {
			t.Errorf("%s.Shows(%+v) = %v", tt.r, tt.res, got)
		}
	}
}

func TestDeviationNarrowedToAScenario(t *testing.T) {
	p := Profile{Deviations: []Deviation{{Clause: "C5", Mode: Mandatory, ScenarioID: "intermediate-only", Reason: "r"}}}
	if _, ok := p.Deviation([]string{"@C5", "@id:intermediate-only"}, []string{"C5"}, []Mode{Mandatory}); !ok {
		t.Error("the named scenario is not covered")
	}
	if _, ok := p.Deviation([]string{"@C5", "@id:intermediate-only-not"}, []string{"C5"}, []Mode{Mandatory}); ok {
		t.Error("another scenario of the clause is covered too")
	}
	if !RefuseMixed.Shows("tls: bad certificate", 0) || !RefuseMixed.Shows("", 400) || RefuseMixed.Shows("", 200) {
		t.Error("a mixed refusal is a 400 or an alert, nothing else")
	}
}
