package user

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemStore keeps users in process memory, for the gateway's memory mode (one replica,
// nothing survives a restart). It has the method set and semantics of Store. It is
// safe for concurrent use; the zero value is not usable, call NewMemStore.
type MemStore struct {
	now func() time.Time

	mu      sync.RWMutex
	byID    map[string]User
	byEmail map[string]string // normalised email -> ID
	teams   map[string]Team   // team ID -> team
}

// NewMemStore returns an empty MemStore whose clock is now (time.Now if nil).
func NewMemStore(now func() time.Time) *MemStore {
	if now == nil {
		now = time.Now
	}
	return &MemStore{now: now, byID: make(map[string]User), byEmail: make(map[string]string), teams: make(map[string]Team)}
}

// Create stores u. The email is stored normalised (NormalizeEmail). A zero CreatedAt
// becomes now and a zero UpdatedAt becomes CreatedAt. It returns ErrInvalid for a
// malformed record and ErrConflict when the email or ID is taken.
func (m *MemStore) Create(ctx context.Context, u User) error {
	u, err := prepareNew(u, m.now)
	if err != nil {
		return fmt.Errorf("user: create %s: %w", u.ID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byEmail[u.Email]; ok {
		return fmt.Errorf("user: create %s: email: %w", u.ID, ErrConflict)
	}
	if _, ok := m.byID[u.ID]; ok {
		return fmt.Errorf("user: create %s: id: %w", u.ID, ErrConflict)
	}
	m.byID[u.ID] = u
	m.byEmail[u.Email] = u.ID
	return nil
}

// Get returns the user with ID id, or ErrNotFound.
func (m *MemStore) Get(ctx context.Context, id string) (User, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.byID[id]
	if !ok {
		return User{}, fmt.Errorf("user: get %s: %w", id, ErrNotFound)
	}
	return u, nil
}

// ByEmail returns the user whose email is email, compared after NormalizeEmail, or
// ErrNotFound.
func (m *MemStore) ByEmail(ctx context.Context, email string) (User, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.byEmail[NormalizeEmail(email)]
	if !ok {
		return User{}, fmt.Errorf("user: lookup by email: %w", ErrNotFound)
	}
	return m.byID[id], nil
}

// Update replaces the stored user with ID u.ID by u, keeping CreatedAt and setting
// UpdatedAt to now; see Store.Update. It returns ErrInvalid, ErrNotFound, or
// ErrConflict when the new email belongs to another user.
func (m *MemStore) Update(ctx context.Context, u User) error {
	u, err := prepare(u)
	if err != nil {
		return fmt.Errorf("user: update %s: %w", u.ID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.byID[u.ID]
	if !ok {
		return fmt.Errorf("user: update %s: %w", u.ID, ErrNotFound)
	}
	if u.Email != old.Email {
		if owner, taken := m.byEmail[u.Email]; taken && owner != u.ID {
			return fmt.Errorf("user: update %s: email: %w", u.ID, ErrConflict)
		}
		delete(m.byEmail, old.Email)
		m.byEmail[u.Email] = u.ID
	}
	u.CreatedAt = old.CreatedAt
	u.UpdatedAt = m.now().UTC().Round(0)
	m.byID[u.ID] = u
	return nil
}

// Modify is Store.Modify: fn changes the current record under the store's lock.
func (m *MemStore) Modify(ctx context.Context, id string, fn func(*User) error) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.byID[id]
	if !ok {
		return User{}, fmt.Errorf("user: modify %s: %w", id, ErrNotFound)
	}
	nu := old
	if err := fn(&nu); err != nil {
		return User{}, err
	}
	nu.ID = id
	nu, err := prepare(nu)
	if err != nil {
		return User{}, fmt.Errorf("user: modify %s: %w", id, err)
	}
	if nu.Email != old.Email {
		if owner, taken := m.byEmail[nu.Email]; taken && owner != id {
			return User{}, fmt.Errorf("user: modify %s: email: %w", id, ErrConflict)
		}
		delete(m.byEmail, old.Email)
		m.byEmail[nu.Email] = id
	}
	nu.CreatedAt, nu.UpdatedAt = old.CreatedAt, m.now().UTC().Round(0)
	m.byID[id] = nu
	return nu, nil
}

// Delete removes the user with ID id and frees its email. It returns ErrNotFound for
// an unknown id.
func (m *MemStore) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[id]
	if !ok {
		return fmt.Errorf("user: delete %s: %w", id, ErrNotFound)
	}
	delete(m.byID, id)
	delete(m.byEmail, u.Email)
	return nil
}

// List returns every user, ordered by email.
func (m *MemStore) List(ctx context.Context) ([]User, error) {
	m.mu.RLock()
	users := make([]User, 0, len(m.byID))
	for _, u := range m.byID {
		users = append(users, u)
	}
	m.mu.RUnlock()
	sortByEmail(users)
	return users, nil
}

// Count returns the number of users.
func (m *MemStore) Count(ctx context.Context) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byID), nil
}
