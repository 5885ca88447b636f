// Package cas paces the retries of read-compare-write loops on Redis records.
package cas

import (
	"context"
	"math/rand/v2"
	"time"
)

// Pause waits before attempt n of a loop (0 for the first attempt, which does not
// wait): a random time below n milliseconds, so writers that collided on one record spread out instead of colliding
// again at once, as they do when a busy machine schedules them together. It returns the
// context's error if the context ends first.
func Pause(ctx context.Context, n int) error {
	if n <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(time.Duration(rand.Int64N(int64(n) * int64(time.Millisecond))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
