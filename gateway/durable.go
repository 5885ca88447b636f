package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/user"
)

// The writes whose loss in a Redis failover would give access back (a revocation, a
// user disabled or demoted, a new password, a logout, a refresh family revoked) and key
// creation (so that an acknowledged key is not lost) wait, after they succeed on the
// primary, until store.redis.wait_replicas replicas have them. When fewer confirm in
// time the call fails with an error wrapping store.ErrNotReplicated, which the
// management API and the issuer answer with 503 store_unavailable and Retry-After: the
// change may or may not survive a failover, so the client must retry. The caches of
// every replica are flushed for the record anyway, so that no replica keeps trusting
// its cached copy of what was changed on the primary.

// Slot keys: a key in the hash slot of each store, for store.Redis.WaitReplicas.
const (
	apiKeysSlot = "{apikeys}:ids"
	usersSlot   = "{users}:recs"
	refreshSlot = "{refresh}:wait"
)

// KeysSlotKey, UsersSlotKey and RefreshSlotKey name the hash slots of the API-key, user
// and refresh-token records, for tools that write those records to Redis directly (the
// CLI's --config mode) and must wait for replicas as the management API does:
// store.Redis.WaitReplicas(ctx, KeysSlotKey).
const (
	KeysSlotKey    = apiKeysSlot
	UsersSlotKey   = usersSlot
	RefreshSlotKey = refreshSlot
)

// durableKeys waits for replicas after the key writes that must survive a failover.
type durableKeys struct {
	keyRecords
	wait  func(ctx context.Context, keys ...string) error
	flush func(ctx context.Context, id string) // drop id from every replica's cache
}

func (d durableKeys) confirm(ctx context.Context, id string) error {
	if err := d.wait(ctx, apiKeysSlot); err != nil {
		d.flush(ctx, id)
		return fmt.Errorf("gateway: key %s: %w", id, err)
	}
	return nil
}

// Create stores k and waits for replicas.
func (d durableKeys) Create(ctx context.Context, k apikey.Key, hash [32]byte) error {
	return d.CreateLimited(ctx, k, hash, 0)
}

// CreateLimited stores k and waits for replicas. A key whose creation is not confirmed
// is revoked (best effort), since its secret is never shown to anyone.
func (d durableKeys) CreateLimited(ctx context.Context, k apikey.Key, hash [32]byte, maxActive int) error {
	if err := d.keyRecords.CreateLimited(ctx, k, hash, maxActive); err != nil {
		return err
	}
	if err := d.confirm(ctx, k.ID); err != nil {
		_, _ = d.keyRecords.Revoke(context.WithoutCancel(ctx), k.ID, time.Now()) // best effort; the 503 stands
		return err
	}
	return nil
}

// Update changes k and waits for replicas (an edit may narrow scopes or IPs).
func (d durableKeys) Update(ctx context.Context, k apikey.Key) error {
	if err := d.keyRecords.Update(ctx, k); err != nil {
		return err
	}
	return d.confirm(ctx, k.ID)
}

// Revoke revokes id and waits for replicas.
func (d durableKeys) Revoke(ctx context.Context, id string, at time.Time) (apikey.Key, error) {
	k, err := d.keyRecords.Revoke(ctx, id, at)
	if err != nil {
		return k, err
	}
	return k, d.confirm(ctx, id)
}

// MarkRotated ends id's life at end and waits for replicas.
func (d durableKeys) MarkRotated(ctx context.Context, id, replacedBy string, end *time.Time) (apikey.Key, error) {
	k, err := d.keyRecords.MarkRotated(ctx, id, replacedBy, end)
	if err != nil {
		return k, err
	}
	return k, d.confirm(ctx, id)
}

// durableUsers waits for replicas after every user write: each may disable, demote,
// delete, or end sessions (the session epoch lives in the record).
type durableUsers struct {
	userRecords
	wait  func(ctx context.Context, keys ...string) error
	flush func(ctx context.Context, id string) // drop the user's credentials from every cache
}

func (d durableUsers) confirm(ctx context.Context, id string) error {
	if err := d.wait(ctx, usersSlot); err != nil {
		d.flush(ctx, id)
		return fmt.Errorf("gateway: user %s: %w", id, err)
	}
	return nil
}

// Update stores u and waits for replicas.
func (d durableUsers) Update(ctx context.Context, u user.User) error {
	if err := d.userRecords.Update(ctx, u); err != nil {
		return err
	}
	return d.confirm(ctx, u.ID)
}

// Modify edits id and waits for replicas.
func (d durableUsers) Modify(ctx context.Context, id string, fn func(*user.User) error) (user.User, error) {
	u, err := d.userRecords.Modify(ctx, id, fn)
	if err != nil {
		return u, err
	}
	return u, d.confirm(ctx, id)
}

// Delete removes id and waits for replicas.
func (d durableUsers) Delete(ctx context.Context, id string) error {
	if err := d.userRecords.Delete(ctx, id); err != nil {
		return err
	}
	return d.confirm(ctx, id)
}

// durableRefresh waits for replicas after every refresh-family revocation, including
// the one a reused token triggers.
type durableRefresh struct {
	issuer.RefreshStore
	wait func(ctx context.Context, keys ...string) error
}

// RevokeSession revokes the family and waits for replicas.
func (d durableRefresh) RevokeSession(ctx context.Context, userID, family string) error {
	if err := d.RefreshStore.RevokeSession(ctx, userID, family); err != nil {
		return err
	}
	return d.wait(ctx, refreshSlot)
}

// RevokeFamily revokes token's family and waits for replicas.
func (d durableRefresh) RevokeFamily(ctx context.Context, userID, token string) error {
	if err := d.RefreshStore.RevokeFamily(ctx, userID, token); err != nil {
		return err
	}
	return d.wait(ctx, refreshSlot)
}

// RevokeUser revokes every family of userID and waits for replicas.
func (d durableRefresh) RevokeUser(ctx context.Context, userID string) error {
	if err := d.RefreshStore.RevokeUser(ctx, userID); err != nil {
		return err
	}
	return d.wait(ctx, refreshSlot)
}

// Rotate spends token; when that revoked a reused token's family, it waits for replicas
// and fails (rather than refusing with the reuse) when they do not confirm it.
func (d durableRefresh) Rotate(ctx context.Context, token string, ttl time.Duration) (issuer.Rotated, error) {
	r, err := d.RefreshStore.Rotate(ctx, token, ttl)
	if errors.Is(err, issuer.ErrReused) {
		if werr := d.wait(ctx, refreshSlot); werr != nil {
			return r, werr
		}
	}
	return r, err
}

// waitReplicas is the store's WaitReplicas, or nothing for the memory store.
func waitReplicas(st store.Store) func(ctx context.Context, keys ...string) error {
	if r, ok := st.(*store.Redis); ok {
		return r.WaitReplicas
	}
	return func(context.Context, ...string) error { return nil }
}
