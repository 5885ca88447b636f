package ratelimit

import (
	"context"
	"strings"
)

// Partition routes the keys that start with Prefix to a Limiter of their own.
type Partition struct {
	// Prefix selects the keys, e.g. "login:email:".
	Prefix string
	// Limiter keeps their state.
	Limiter Limiter
}

// Partitioned is a [Limiter] that keeps each purpose's buckets apart: a key goes to the
// first [Partition] whose Prefix it starts with, and every other key to the default
// limiter. With a [Local] per partition, each purpose has its own bound, so buckets that
// anyone can create (one per client address or email at login) can never evict the
// bucket of a credential, which would reset that credential's limit (issue 9, item 14).
// Partitioned is safe for concurrent use when its limiters are.
type Partitioned struct {
	def   Limiter
	parts []Partition
}

// NewPartitioned returns a Partitioned limiter with default def and the given partitions,
// tried in order.
func NewPartitioned(def Limiter, parts ...Partition) *Partitioned {
	return &Partitioned{def: def, parts: parts}
}

// Allow asks the limiter of key's partition.
func (p *Partitioned) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	return p.limiterOf(key).Allow(ctx, key, l)
}

// limiterOf is the limiter that keeps key.
func (p *Partitioned) limiterOf(key string) Limiter {
	for _, pt := range p.parts {
		if strings.HasPrefix(key, pt.Prefix) {
			return pt.Limiter
		}
	}
	return p.def
}

// Mirror passes the call to key's partition, when its limiter mirrors (a [Local] does).
func (p *Partitioned) Mirror(key string, l Limit, remaining int) {
	if m, ok := p.limiterOf(key).(mirror); ok {
		m.Mirror(key, l, remaining)
	}
}
