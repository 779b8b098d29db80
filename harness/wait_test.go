package harness

import (
	"context"
	"net"
	"testing"
	"time"
)

// waitListening returns once the port listens, which may be after the
// call (a balancer's plain-HTTP port opened after its TLS one), and says
// why when it never does.
func TestWaitListening(t *testing.T) {
	// A port that was free: nothing listens until the listener below.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := &Environment{}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.waitListening(short, "http://"+addr); err == nil {
		t.Fatalf("waitListening on %s, where nothing listens: no error", addr)
	}
	opened := make(chan net.Listener)
	go func() {
		time.Sleep(30 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
		}
		opened <- l
	}()
	later, cancelLater := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelLater()
	if err := e.waitListening(later, "http://"+addr); err != nil {
		t.Errorf("waitListening on %s, opened 30 ms later: %v", addr, err)
	}
	if l := <-opened; l != nil {
		l.Close()
	}
}
