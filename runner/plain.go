package runner

import "io"

// plainWriter drops ANSI escape sequences (ESC '[' ... final letter) from
// what godog's console formatters print, and passes the rest on in one
// write per write.
//
// godog's own NoColors option does the same, but writes one rune per
// system call, to every output, files included: the cucumber JSON of the
// full suite (640 KB) took 1.4 s to write that way, a quarter of a run.
// With NoColors off, godog leaves file outputs alone (on Unix its colour
// writer passes bytes through), and this writer keeps the console plain.
type plainWriter struct {
	w io.Writer
	// in: inside an escape sequence: 1 after ESC, 2 after ESC '['.
	in  int
	buf []byte
}

func (p *plainWriter) Write(data []byte) (int, error) {
	p.buf = p.buf[:0]
	for _, c := range data {
		switch {
		case p.in == 0 && c == 0x1b:
			p.in = 1
		case p.in == 0:
			p.buf = append(p.buf, c)
		case p.in == 1 && c == '[':
			p.in = 2
		case p.in == 1:
			// Not a CSI sequence: keep both bytes.
			p.buf = append(p.buf, 0x1b, c)
			p.in = 0
		case ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '@':
			p.in = 0 // the final byte of the sequence
		}
	}
	if len(p.buf) > 0 {
		if _, err := p.w.Write(p.buf); err != nil {
			return 0, err
		}
	}
	return len(data), nil
}
