package runner

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/fstest"

	"mtlsconform/contract"
	"mtlsconform/fixtures/pki/pkitest"
	"mtlsconform/steps"
)

// slowClose is a target whose Close waits to be let go, and fails.
type slowClose struct {
	*Live
	started, release chan struct{}
}

func (s *slowClose) Open(context.Context, *steps.Catalogue) error { return nil }
func (s *slowClose) Close(context.Context) error {
	close(s.started)
	<-s.release
	return errors.New("the engine is gone")
}

// TestWhileClosingOverlapsTheTeardown: WhileClosing gets the result while
// the target is still closing, and Run returns after both, with the
// cleanup's error joined to the hook's.
func TestWhileClosingOverlapsTheTeardown(t *testing.T) {
	cred := pkitest.MustClient(t, pkitest.MustRootCA(t, "Closing Root"), "closing")
	live, err := NewLive(LiveOptions{URL: "https://lb.example:443", Mode: contract.Mandatory, Credential: cred, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	target := &slowClose{Live: live, started: make(chan struct{}), release: make(chan struct{})}
	hooked := false
	_, err = Run(context.Background(), RunOptions{
		Target:   target,
		Features: fstest.MapFS{"empty.feature": {Data: []byte("Feature: nothing to run\n")}},
		Output:   io.Discard, // godog says "No scenarios" otherwise, into go test's output
		WhileClosing: func(res contract.RunResult) error {
			<-target.started // the close is under way while the hook runs
			hooked = res.Target != ""
			close(target.release)
			return errors.New("report folder full")
		},
	})
	if !hooked {
		t.Error("WhileClosing was not given the run's result")
	}
	if err == nil || !strings.Contains(err.Error(), "report folder full") || !strings.Contains(err.Error(), "cleanup: the engine is gone") {
		t.Errorf("err = %v, want the hook's error and the cleanup's", err)
	}
}
