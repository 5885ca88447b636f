package main

import (
	"os"
	"syscall"
)

// childAttr puts a child in its own process group, so a Ctrl-C at the terminal reaches only
// the benchmark (which then stops its children in order), and has the kernel kill the child
// if the benchmark dies without cleaning up (kill -9, a crash).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills p and everything in its process group: `go build` leaves its compiler
// processes behind when only it is killed.
func killGroup(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGKILL) }
