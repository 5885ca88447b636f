// Package earlyhup subscribes `authgate serve` to SIGHUP during package initialisation,
// the earliest point Go code runs, so that a reload signal sent while the gateway starts
// (a config manager that signals right after a restart) is kept instead of killing the
// process with SIGHUP's default action.
//
// Import it first, for its side effect only; the main package takes the channel with
// Take. It imports only the standard library's signal handling, so the import-path-ordered
// initialisation reaches it before the gateway's own packages.
package earlyhup

import (
	"os"
	"os/signal"
	"syscall"
)

// early is the process's one SIGHUP subscription made before main: a package variable,
// since package initialisation has nowhere else to leave it. Only Take reads it.
var early chan os.Signal

func init() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		return // other commands keep SIGHUP's default: they end with their terminal
	}
	early = make(chan os.Signal, 1) // one pending SIGHUP is one reload; more add nothing
	signal.Notify(early, syscall.SIGHUP)
}

// Take returns the channel subscribed to SIGHUP since initialisation, holding at most one
// signal received so far, or nil when the process is not `authgate serve`. The caller
// owns the subscription from then on (signal.Stop ends it).
func Take() chan os.Signal {
	ch := early
	early = nil
	return ch
}
