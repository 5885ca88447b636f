package issuer

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// memMinSweep is the number of stored tokens below which MemRefreshStore never sweeps.
const memMinSweep = 1024

// MemRefreshStore is a RefreshStore in one process's memory, for single-replica deployments
// and tests. It behaves exactly like RedisRefreshStore, with expiry following the clock
// given to NewMemRefreshStore. It is safe for concurrent use; its zero value is not usable.
type MemRefreshStore struct {
	now   func() time.Time
	grace time.Duration

	mu      sync.Mutex
	tokens  map[string]*memToken            // by token hash
	fams    map[string]*memFamily           // by family ID
	users   map[string]map[string]time.Time // user ID -> family ID -> family expiry
	sweepAt int
}

// memToken is one refresh token's record.
type memToken struct {
	user, fam string
	exp       time.Time
	used      bool
	// With a reuse grace: when it was spent, its successor sealed under it (see
	// sealSuccessor) and the successor's expiry.
	spentAt, nextExp time.Time
	sealed           string
}

// memFamily is one family's record; exp is the expiry of its newest token.
type memFamily struct {
	user    string
	exp     time.Time
	revoked bool
	epoch   int64 // the user's session epoch when the family began
}

var _ RefreshStore = (*MemRefreshStore)(nil)

// NewMemRefreshStore returns an empty MemRefreshStore whose expiries follow now; a nil now
// means time.Now.
func NewMemRefreshStore(now func() time.Time) *MemRefreshStore {
	if now == nil {
		now = time.Now
	}
	return &MemRefreshStore{
		now:     now,
		tokens:  make(map[string]*memToken),
		fams:    make(map[string]*memFamily),
		users:   make(map[string]map[string]time.Time),
		sweepAt: memMinSweep,
	}
}

// WithReuseGrace sets how long after a token is spent it may be exchanged again, for the
// same successor, without revoking its family (0, the default, means never), and returns
// m. Call it before m is used.
func (m *MemRefreshStore) WithReuseGrace(d time.Duration) *MemRefreshStore {
	m.grace = max(d, 0)
	return m
}

// Issue starts a new family for userID and returns its first token, valid for ttl.
func (m *MemRefreshStore) Issue(ctx context.Context, userID string, ttl time.Duration) (string, time.Time, error) {
	s, err := m.IssueSession(ctx, userID, 0, ttl)
	return s.Token, s.ExpiresAt, err
}

// IssueSession is Issue, with the new family's id.
func (m *MemRefreshStore) IssueSession(ctx context.Context, userID string, epoch int64, ttl time.Duration) (Rotated, error) {
	if err := checkIssue(userID, ttl); err != nil {
		return Rotated{}, err
	}
	if err := ctx.Err(); err != nil {
		return Rotated{}, fmt.Errorf("issuer: refresh issue: %w", err)
	}
	token, hash := newRefreshToken()
	fam := newFamilyID()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	exp := expiry(now, ttl)
	m.tokens[hash] = &memToken{user: userID, fam: fam, exp: exp}
	m.fams[fam] = &memFamily{user: userID, exp: exp, epoch: epoch}
	if m.users[userID] == nil {
		m.users[userID] = make(map[string]time.Time)
	}
	m.users[userID][fam] = exp
	m.maybeSweep(now)
	return Rotated{UserID: userID, Family: fam, Token: token, ExpiresAt: exp, Epoch: epoch, HasEpoch: true}, nil
}

// RevokeSession revokes family when it belongs to userID.
func (m *MemRefreshStore) RevokeSession(ctx context.Context, userID, family string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("issuer: refresh revoke session: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.fams[family]
	if !ok || f.user != userID {
		return ErrRefreshInvalid
	}
	f.revoked = true
	return nil
}

// Rotate spends token and returns the next token of its family, valid for ttl. See
// RefreshStore for the errors.
func (m *MemRefreshStore) Rotate(ctx context.Context, token string, ttl time.Duration) (Rotated, error) {
	if !validRefreshForm(token) {
		return Rotated{}, ErrRefreshInvalid
	}
	if err := checkTTL("rotate", ttl); err != nil {
		return Rotated{}, err
	}
	if err := ctx.Err(); err != nil {
		return Rotated{}, fmt.Errorf("issuer: refresh rotate: %w", err)
	}
	next, nextHash := newRefreshToken()
	sealed := ""
	if m.grace > 0 {
		var err error
		if sealed, err = sealSuccessor(token, next); err != nil {
			return Rotated{}, fmt.Errorf("issuer: refresh rotate: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	t, ok := m.tokens[hashRefresh(token)]
	if !ok || !live(t.exp, now) {
		return Rotated{}, ErrRefreshInvalid
	}
	f, ok := m.fams[t.fam]
	if !ok || !live(f.exp, now) {
		return Rotated{}, ErrRefreshInvalid
	}
	if f.revoked {
		return Rotated{}, ErrRefreshRevoked
	}
	if t.used {
		if m.grace > 0 && t.sealed != "" && now.UnixMilli()-t.spentAt.UnixMilli() < m.grace.Milliseconds() {
			// Two clients raced one refresh: both get the one successor.
			succ, err := openSuccessor(token, t.sealed)
			if err != nil {
				return Rotated{}, fmt.Errorf("issuer: refresh rotate: %w", err)
			}
			return Rotated{UserID: t.user, Family: t.fam, Token: succ, ExpiresAt: t.nextExp, Epoch: f.epoch, HasEpoch: true}, nil
		}
		f.revoked = true
		t.sealed = ""
		return Rotated{UserID: t.user, Family: t.fam}, ErrReused
	}
	t.used = true
	exp := expiry(now, ttl)
	if m.grace > 0 {
		t.spentAt, t.sealed, t.nextExp = time.UnixMilli(now.UnixMilli()), sealed, exp
	}
	m.tokens[nextHash] = &memToken{user: t.user, fam: t.fam, exp: exp}
	if exp.After(f.exp) {
		f.exp = exp
	}
	fams := m.users[t.user]
	if fams == nil {
		fams = make(map[string]time.Time)
		m.users[t.user] = fams
	}
	if exp.After(fams[t.fam]) {
		fams[t.fam] = exp
	}
	m.maybeSweep(now)
	return Rotated{UserID: t.user, Family: t.fam, Token: next, ExpiresAt: exp, Epoch: f.epoch, HasEpoch: true}, nil
}

// RevokeFamily revokes the family of token when token is live and belongs to userID; else
// it returns ErrRefreshInvalid.
func (m *MemRefreshStore) RevokeFamily(ctx context.Context, userID, token string) error {
	if !validRefreshForm(token) {
		return ErrRefreshInvalid
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("issuer: refresh revoke family: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[hashRefresh(token)]
	if !ok || !live(t.exp, m.now()) || t.user != userID {
		return ErrRefreshInvalid
	}
	if f, ok := m.fams[t.fam]; ok {
		f.revoked = true
	}
	return nil
}

// RevokeUser revokes every family of userID. A user without families is not an error.
func (m *MemRefreshStore) RevokeUser(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("issuer: refresh revoke user: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for fam := range m.users[userID] {
		if f, ok := m.fams[fam]; ok {
			f.revoked = true
		}
	}
	return nil
}

// maybeSweep drops expired records once the token map has doubled since the last sweep,
// so memory stays proportional to the live tokens. m.mu must be held.
func (m *MemRefreshStore) maybeSweep(now time.Time) {
	if len(m.tokens) < m.sweepAt {
		return
	}
	for h, t := range m.tokens {
		if !live(t.exp, now) {
			delete(m.tokens, h)
		}
	}
	for id, f := range m.fams {
		if !live(f.exp, now) {
			delete(m.fams, id)
		}
	}
	for u, fams := range m.users {
		for id, exp := range fams {
			if !live(exp, now) {
				delete(fams, id)
			}
		}
		if len(fams) == 0 {
			delete(m.users, u)
		}
	}
	m.sweepAt = max(memMinSweep, 2*len(m.tokens))
}

// expiry returns now + ttl at the millisecond resolution that Redis keeps.
func expiry(now time.Time, ttl time.Duration) time.Time {
	return time.UnixMilli(now.Add(ttl).UnixMilli()).UTC()
}

// live reports whether a record expiring at exp is still valid at now.
func live(exp, now time.Time) bool { return now.UnixMilli() < exp.UnixMilli() }
