package contract

import (
	"testing"
)

func TestSpellings(t *testing.T) {
	got := Spellings("X-SSL-Issuer")
	want := []string{"X-SSL-Issuer", "X-SSL_Issuer", "X_SSL-Issuer", "X_SSL_Issuer"}
	if len(got) != 4 {
		t.Fatalf("%q", got)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("Spellings lacks %q: %q", w, got)
		}
	}
	if n := len(Spellings("X-WSO2-CLIENT-CERTIFICATE")); n != 8 {
		t.Errorf("%d spellings of a name with three dashes, want 8", n)
	}
}
