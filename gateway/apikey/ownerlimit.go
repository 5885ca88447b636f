package apikey

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ErrOwnerLimit is returned (wrapped, in an *OwnerLimitError) by CreateLimited when the
// key's creator already holds as many active keys as allowed (api_keys.max_keys_per_owner).
var ErrOwnerLimit = errors.New("apikey: owner key limit reached")

// OwnerLimitError says how many active keys the creator may hold. It wraps ErrOwnerLimit.
type OwnerLimitError struct {
	Max int
}

func (e *OwnerLimitError) Error() string {
	return fmt.Sprintf("%s: at most %d active keys per owner", ErrOwnerLimit, e.Max)
}

func (e *OwnerLimitError) Unwrap() error { return ErrOwnerLimit }

// activeScore is k's score in its creator's active set: its expiry in Unix ms, "+inf"
// for a key that never expires, and "" for a revoked key (not a member).
func activeScore(k Key) string {
	switch {
	case k.RevokedAt != nil:
		return ""
	case k.ExpiresAt == nil:
		return "+inf"
	}
	return strconv.FormatInt(k.ExpiresAt.UnixMilli(), 10)
}

// CreateLimited is Create, refused with an error wrapping ErrOwnerLimit when k's creator
// already holds maxActive keys that are neither revoked nor expired (maxActive <= 0: no
// limit). The count and the insert happen under one lock.
func (m *MemStore) CreateLimited(ctx context.Context, k Key, hash [32]byte, maxActive int) error {
	if maxActive <= 0 {
		return m.Create(ctx, k, hash)
	}
	return m.create(ctx, k, hash, func() error {
		now, n := m.now(), 0
		for id := range m.byCreator[k.CreatedBy] {
			if m.byID[id].key.Status(now) == StatusActive {
				n++
			}
		}
		if n >= maxActive {
			return fmt.Errorf("apikey: create %s: %w", k.ID, &OwnerLimitError{Max: maxActive})
		}
		return nil
	})
}
