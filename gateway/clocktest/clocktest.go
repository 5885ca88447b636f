// Package clocktest is a clock for tests: time moves only when the test says so, so TTLs,
// expiries and stale windows are checked without sleeping.
package clocktest

import (
	"sync/atomic"
	"time"
)

// Clock is a settable time source, safe for concurrent use. Pass its Now where a
// constructor takes a clock.
type Clock struct{ ns atomic.Int64 }

// New returns a Clock standing at t.
func New(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now returns the clock's time (in UTC).
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
