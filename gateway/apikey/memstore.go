package apikey

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemStore keeps keys in process memory, for the gateway's memory mode (one replica,
// nothing survives a restart). It has the method set and semantics of Store. It is
// safe for concurrent use; the zero value is not usable, call NewMemStore.
//
// List collects the candidates (every key, or one creator's), filters and sorts them
// on every call: O(n log n) for n candidates, fine for the key counts of one process.
type MemStore struct {
	now func() time.Time

	mu        sync.RWMutex
	byID      map[string]*memRecord
	byHash    map[[32]byte]string            // hash -> ID
	byCreator map[string]map[string]struct{} // user ID -> key IDs
}

type memRecord struct {
	key  Key
	hash [32]byte
}

// NewMemStore returns an empty MemStore whose clock is now (time.Now if nil).
func NewMemStore(now func() time.Time) *MemStore {
	if now == nil {
		now = time.Now
	}
	return &MemStore{
		now:       now,
		byID:      make(map[string]*memRecord),
		byHash:    make(map[[32]byte]string),
		byCreator: make(map[string]map[string]struct{}),
	}
}

// Create stores k under hash. It returns ErrInvalid for a malformed record and
// ErrConflict when hash or k.ID is already stored. A zero CreatedAt becomes now.
func (m *MemStore) Create(ctx context.Context, k Key, hash [32]byte) error {
	return m.create(ctx, k, hash, nil)
}

// create is Create; admit, when set, is asked under the lock, after the conflict
// checks, whether k may be stored.
func (m *MemStore) create(_ context.Context, k Key, hash [32]byte, admit func() error) error {
	if err := validateNew(k); err != nil {
		return fmt.Errorf("apikey: create %s: %w", k.ID, err)
	}
	k = k.clone()
	if k.CreatedAt.IsZero() {
		k.CreatedAt = m.now()
	}
	if k.LastUsedAt != nil {
		t := truncMilli(*k.LastUsedAt)
		k.LastUsedAt = &t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byHash[hash]; ok {
		return fmt.Errorf("apikey: create %s: hash: %w", k.ID, ErrConflict)
	}
	if _, ok := m.byID[k.ID]; ok {
		return fmt.Errorf("apikey: create %s: id: %w", k.ID, ErrConflict)
	}
	if admit != nil {
		if err := admit(); err != nil {
			return err
		}
	}
	m.byID[k.ID] = &memRecord{key: k, hash: hash}
	m.byHash[hash] = k.ID
	ids := m.byCreator[k.CreatedBy]
	if ids == nil {
		ids = make(map[string]struct{})
		m.byCreator[k.CreatedBy] = ids
	}
	ids[k.ID] = struct{}{}
	return nil
}

// Get returns the key with ID id, or ErrNotFound.
func (m *MemStore) Get(ctx context.Context, id string) (Key, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.byID[id]
	if !ok {
		return Key{}, fmt.Errorf("apikey: get %s: %w", id, ErrNotFound)
	}
	return r.key.clone(), nil
}

// ByHash returns the key stored under hash, or ErrNotFound. It is the
// authentication lookup.
func (m *MemStore) ByHash(ctx context.Context, hash [32]byte) (Key, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.byHash[hash]
	if !ok {
		return Key{}, fmt.Errorf("apikey: lookup by hash: %w", ErrNotFound)
	}
	return m.byID[id].key.clone(), nil
}

// Update copies the editable fields of k (name, description, scopes, allowed IPs,
// expires_at, expires_in_days, rate limit) onto the stored key with ID k.ID and
// returns ErrNotFound if there is none. Other fields of k are ignored. A revoked key
// can be edited but stays revoked.
func (m *MemStore) Update(ctx context.Context, k Key) error {
	if err := validateEdit(k); err != nil {
		return fmt.Errorf("apikey: update %s: %w: %w", k.ID, ErrInvalid, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[k.ID]
	if !ok {
		return fmt.Errorf("apikey: update %s: %w", k.ID, ErrNotFound)
	}
	r.key = r.key.applyEdit(k)
	return nil
}

// Revoke marks the key revoked at at and returns it. Revoking a revoked key keeps
// its first revocation time and is not an error. It returns ErrNotFound for an
// unknown id.
func (m *MemStore) Revoke(ctx context.Context, id string, at time.Time) (Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[id]
	if !ok {
		return Key{}, fmt.Errorf("apikey: revoke %s: %w", id, ErrNotFound)
	}
	if r.key.RevokedAt == nil {
		r.key.RevokedAt = &at
	}
	return r.key.clone(), nil
}

// MarkRotated records that rotation made the key replacedBy from key id and, when end
// is set, that key id ends at end at the latest: its expiry and hard end only move
// earlier, and later edits cannot move its expiry beyond the hard end. It returns the
// key, or ErrNotFound.
func (m *MemStore) MarkRotated(ctx context.Context, id, replacedBy string, end *time.Time) (Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[id]
	if !ok {
		return Key{}, fmt.Errorf("apikey: mark rotated %s: %w", id, ErrNotFound)
	}
	r.key = r.key.markRotated(replacedBy, end)
	return r.key.clone(), nil
}

// TouchLastUsed records last-use times, by key ID, at millisecond precision. A time
// only moves a key's last use forward; unknown IDs are ignored (the key may have
// been written by a request racing its creation on another replica).
func (m *MemStore) TouchLastUsed(ctx context.Context, used map[string]time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, at := range used {
		r, ok := m.byID[id]
		if !ok {
			continue
		}
		at = truncMilli(at)
		if r.key.LastUsedAt == nil || at.After(*r.key.LastUsedAt) {
			r.key.LastUsedAt = &at
		}
	}
	return nil
}

// List returns one page of keys; see Query. It returns ErrInvalid for a bad query.
func (m *MemStore) List(ctx context.Context, q Query) (Page, error) {
	lq, err := q.validate()
	if err != nil {
		return Page{}, fmt.Errorf("apikey: list: %w", err)
	}
	now := m.now()
	var cands []candidate
	m.mu.RLock()
	consider := func(r *memRecord) {
		mem := member(r.key, lq.Sort)
		if lq.beyond(mem) && lq.match(r.key, now) {
			cands = append(cands, candidate{mem, r.key.clone()})
		}
	}
	if lq.CreatedBy != "" {
		for id := range m.byCreator[lq.CreatedBy] {
			consider(m.byID[id])
		}
	} else {
		for _, r := range m.byID {
			consider(r)
		}
	}
	m.mu.RUnlock()

	sortCandidates(cands, lq.desc)
	var p Page
	for i, c := range cands {
		if i == lq.Limit {
			p.NextCursor = lq.nextCursor(cands[i-1].member)
			break
		}
		p.Keys = append(p.Keys, c.key)
	}
	return p, nil
}
