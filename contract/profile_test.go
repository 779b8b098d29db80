package contract

import "testing"

func TestProfileDeviation(t *testing.T) {
	p := ReferenceNginx
	if d, ok := p.Deviation([]string{"C11"}, []Mode{Optional}); !ok || d.Where() != "C11" {
		t.Errorf("C11: %q %v", d.Where(), ok)
	}
	if _, ok := p.Deviation([]string{"C15"}, []Mode{Mandatory}); ok {
		t.Error("C15 in Mandatory mode counted as a deviation; only Optional is")
	}
	if d, ok := p.Deviation([]string{"C15"}, []Mode{Optional}); !ok || d.Where() != "C15 in optional mode" {
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
