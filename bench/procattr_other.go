//go:build !linux

package main

import (
	"os"
	"syscall"
)

// childAttr is nil off Linux: the benchmark's CPU figures need /proc anyway, and cleanup
// relies on the deferred stop alone.
func childAttr() *syscall.SysProcAttr { return nil }

// killGroup kills p; without Setpgid there is no group of its own to kill.
func killGroup(p *os.Process) error { return p.Kill() }
