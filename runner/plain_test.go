package runner

import (
	"bytes"
	"testing"
)

func TestPlainWriterDropsColours(t *testing.T) {
	for _, tt := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain text passes", []string{"3 scenarios (3 passed)\n"}, "3 scenarios (3 passed)\n"},
		{"colours dropped", []string{"\x1b[32m.\x1b[0m\x1b[1;31mF\x1b[0m\n"}, ".F\n"},
		{"a sequence split across writes", []string{"a\x1b", "[3", "2mb\x1b[0", "mc"}, "abc"},
		{"an ESC that starts no sequence is kept", []string{"x\x1bMy"}, "x\x1bMy"},
		{"UTF-8 passes whole", []string{"— ✓ é\n"}, "— ✓ é\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &plainWriter{w: &out}
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
