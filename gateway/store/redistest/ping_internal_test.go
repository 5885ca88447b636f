package redistest

import (
	"strings"
	"testing"
)

// TestPingTellsAnotherServerApart: a server that answers on the port but is not the
// process launch started (its port was taken in between) is not taken for it.
func TestPingTellsAnotherServerApart(t *testing.T) {
	s := Start(t)
	pid := s.proc.cmd.Process.Pid
	if err := ping(s.Addr(), pid); err != nil {
		t.Fatalf("ping for the server's own pid: %v", err)
	}
	if err := ping(s.Addr(), pid+1); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("ping for another pid: got %v, want an error naming another process", err)
	}
}
