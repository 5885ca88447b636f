package user

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store/cas"
)

// casAttempts bounds the read-compare-write retries of Update and Delete. A retry
// only happens when another writer changed the same user in between.
const casAttempts = 16

// Store keeps users in Redis, shared by every replica of the gateway. It is safe for
// concurrent use; build it with NewStore. Errors from Redis are wrapped and returned
// as they are.
//
// Every key it uses starts with "<prefix>{users}:", so on Redis Cluster both live in
// one hash slot and each change runs as one atomic Lua script:
//
//	<base>recs     hash: user ID -> the user as JSON, password hash and TOTP
//	               secret included
//	<base>emails   hash: normalised email -> user ID
//
// Get and Count are one command, ByEmail one script call. List reads every record
// (HVALS) and sorts in Go: user counts are small.
type Store struct {
	rdb  redis.UniversalClient
	base string
	now  func() time.Time
}

// NewStore returns a Store on rdb whose key names start with prefix (the gateway's
// Redis key prefix) and whose clock is now (time.Now if nil).
func NewStore(rdb redis.UniversalClient, prefix string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, base: prefix + "{users}:", now: now}
}

func (s *Store) recsKey() string   { return s.base + "recs" }
func (s *Store) emailsKey() string { return s.base + "emails" }

// createScript stores a new user unless its email or ID is taken. It returns
// 'email', 'id' or 'ok'.
// KEYS[1] recs, KEYS[2] emails. ARGV[1] id, ARGV[2] email, ARGV[3] record.
var createScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'email' end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'id' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 'ok'
`)

// byEmailScript returns the record of the user with email ARGV[1], or nil.
// KEYS[1] recs, KEYS[2] emails.
var byEmailScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[1], id)
`)

// casScript replaces (or, when ARGV[3] is empty, deletes) a user's record if it still
// holds the value the caller read, and moves its email index entry. It returns
// 'changed' when the record differs from ARGV[2] (or is gone), 'conflict' when the new
// email belongs to another user, else 'ok'.
// KEYS[1] recs, KEYS[2] emails. ARGV[1] id, ARGV[2] old record, ARGV[3] new record or
// "", ARGV[4] old email, ARGV[5] new email.
var casScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 'changed' end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('HGET', KEYS[2], ARGV[4]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[4]) end
  return 'ok'
end
if ARGV[4] ~= ARGV[5] then
  local owner = redis.call('HGET', KEYS[2], ARGV[5])
  if owner and owner ~= ARGV[1] then return 'conflict' end
  if redis.call('HGET', KEYS[2], ARGV[4]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[4]) end
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 'ok'
`)

// Create stores u. The email is stored normalised (NormalizeEmail). A zero CreatedAt
// becomes now and a zero UpdatedAt becomes CreatedAt. It returns ErrInvalid for a
// malformed record and ErrConflict when the email or ID is taken.
func (s *Store) Create(ctx context.Context, u User) error {
	u, err := prepareNew(u, s.now)
	if err != nil {
		return fmt.Errorf("user: create %s: %w", u.ID, err)
	}
	rec, err := encodeRecord(u)
	if err != nil {
		return fmt.Errorf("user: create %s: %w", u.ID, err)
	}
	res, err := createScript.Run(ctx, s.rdb, []string{s.recsKey(), s.emailsKey()}, u.ID, u.Email, rec).Text()
	switch {
	case err != nil:
		return fmt.Errorf("user: create %s: %w", u.ID, err)
	case res == "email" || res == "id":
		return fmt.Errorf("user: create %s: %s: %w", u.ID, res, ErrConflict)
	}
	return nil
}

// Get returns the user with ID id, or ErrNotFound. It is one command (HGET).
func (s *Store) Get(ctx context.Context, id string) (User, error) {
	u, _, err := s.get(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("user: get %s: %w", id, err)
	}
	return u, nil
}

func (s *Store) get(ctx context.Context, id string) (User, string, error) {
	rec, err := s.rdb.HGet(ctx, s.recsKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return User{}, "", ErrNotFound
	}
	if err != nil {
		return User{}, "", err
	}
	u, err := decodeRecord(rec)
	return u, rec, err
}

// ByEmail returns the user whose email is email, compared after NormalizeEmail, or
// ErrNotFound. It is one round trip (a script call).
func (s *Store) ByEmail(ctx context.Context, email string) (User, error) {
	rec, err := byEmailScript.Run(ctx, s.rdb, []string{s.recsKey(), s.emailsKey()}, NormalizeEmail(email)).Text()
	if errors.Is(err, redis.Nil) {
		return User{}, fmt.Errorf("user: lookup by email: %w", ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user: lookup by email: %w", err)
	}
	u, err := decodeRecord(rec)
	if err != nil {
		return User{}, fmt.Errorf("user: lookup by email: %w", err)
	}
	return u, nil
}

// Update replaces the stored user with ID u.ID by u: email, password hash, role,
// organisation, disabled, TOTP secret and MFA flag. CreatedAt is kept and UpdatedAt
// becomes now. An email change moves the email index entry in the same script. It
// returns ErrInvalid, ErrNotFound, or ErrConflict when the new email belongs to
// another user. It writes the whole record: callers Get, change and Update, and the
// last writer wins.
func (s *Store) Update(ctx context.Context, u User) error {
	u, err := prepare(u)
	if err != nil {
		return fmt.Errorf("user: update %s: %w", u.ID, err)
	}
	if err := s.modify(ctx, u.ID, &u); err != nil {
		return fmt.Errorf("user: update %s: %w", u.ID, err)
	}
	return nil
}

// Modify changes user id by fn and stores the result only if nobody changed the user
// between the read and the write; otherwise it reads again and re-applies fn. So a
// change never undoes a concurrent one (an admin's disable, a new password), which
// Update's whole-record write could. fn's error is returned as is. It returns the
// stored user, or ErrNotFound, ErrInvalid, ErrConflict.
func (s *Store) Modify(ctx context.Context, id string, fn func(*User) error) (User, error) {
	for i := range casAttempts {
		if err := cas.Pause(ctx, i); err != nil {
			return User{}, fmt.Errorf("user: modify %s: %w", id, err)
		}
		old, oldRec, err := s.get(ctx, id)
		if err != nil {
			return User{}, fmt.Errorf("user: modify %s: %w", id, err)
		}
		nu := old
		if err := fn(&nu); err != nil {
			return User{}, err
		}
		nu.ID = id
		if nu, err = prepare(nu); err != nil {
			return User{}, fmt.Errorf("user: modify %s: %w", id, err)
		}
		nu.CreatedAt, nu.UpdatedAt = old.CreatedAt, s.now().UTC().Round(0)
		rec, err := encodeRecord(nu)
		if err != nil {
			return User{}, err
		}
		res, err := casScript.Run(ctx, s.rdb, []string{s.recsKey(), s.emailsKey()},
			id, oldRec, rec, old.Email, nu.Email).Text()
		switch {
		case err != nil:
			return User{}, fmt.Errorf("user: modify %s: %w", id, err)
		case res == "conflict":
			return User{}, fmt.Errorf("user: modify %s: email: %w", id, ErrConflict)
		case res == "ok":
			return nu, nil
		}
	}
	return User{}, fmt.Errorf("user: modify %s: record kept changing after %d attempts: %w", id, casAttempts, ErrConflict)
}

// Delete removes the user with ID id and frees its email. It returns ErrNotFound for
// an unknown id.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.modify(ctx, id, nil); err != nil {
		return fmt.Errorf("user: delete %s: %w", id, err)
	}
	return nil
}

// modify replaces the user id by u (nil: deletes it) if nobody changed it between
// the read and the write, retrying otherwise.
func (s *Store) modify(ctx context.Context, id string, u *User) error {
	for i := range casAttempts {
		if err := cas.Pause(ctx, i); err != nil {
			return err
		}
		old, oldRec, err := s.get(ctx, id)
		if err != nil {
			return err
		}
		rec, newEmail := "", old.Email
		if u != nil {
			nu := *u
			nu.CreatedAt = old.CreatedAt
			nu.UpdatedAt = s.now().UTC().Round(0)
			if rec, err = encodeRecord(nu); err != nil {
				return err
			}
			newEmail = nu.Email
		}
		res, err := casScript.Run(ctx, s.rdb, []string{s.recsKey(), s.emailsKey()},
			id, oldRec, rec, old.Email, newEmail).Text()
		switch {
		case err != nil:
			return err
		case res == "conflict":
			return fmt.Errorf("email: %w", ErrConflict)
		case res == "ok":
			return nil
		}
	}
	return fmt.Errorf("record kept changing after %d attempts: %w", casAttempts, ErrConflict)
}

// List returns every user, ordered by email. It reads all records in one command.
func (s *Store) List(ctx context.Context) ([]User, error) {
	recs, err := s.rdb.HVals(ctx, s.recsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("user: list: %w", err)
	}
	users := make([]User, 0, len(recs))
	for _, rec := range recs {
		u, err := decodeRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("user: list: %w", err)
		}
		users = append(users, u)
	}
	sortByEmail(users)
	return users, nil
}

// Count returns the number of users, for "create the bootstrap admin only when no
// user exists". It is one command (HLEN).
func (s *Store) Count(ctx context.Context) (int, error) {
	n, err := s.rdb.HLen(ctx, s.recsKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("user: count: %w", err)
	}
	return int(n), nil
}

// prepareNew checks a record before Create and fills its times.
func prepareNew(u User, now func() time.Time) (User, error) {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	return prepare(u)
}

// sortByEmail orders users by email; emails are unique, so ties break on ID only for
// safety.
func sortByEmail(users []User) {
	slices.SortFunc(users, func(a, b User) int {
		if c := strings.Compare(a.Email, b.Email); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
