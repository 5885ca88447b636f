//go:build faults

// Package faults is authgate's fault suite: two gateway processes (the built binary) in front
// of one real redis-server, each reaching Redis through its own in-process toxiproxy proxy,
// under steady load while Redis is killed, restarted empty, cut off, slowed down or
// blackholed. Every file carries the build tag "faults", so `go test ./...` does not run it;
// `make test-faults` does, and writes a report (see docs/reliability.md).
package faults
