package apikey

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store/cas"
)

// casAttempts bounds the read-compare-write retries of Update and Revoke. A retry
// only happens when another writer changed the same record in between.
const casAttempts = 16

// touchChunk is how many keys one touch script call handles, so that a large batch
// does not block Redis in one long script.
const touchChunk = 256

// Store keeps keys in Redis, shared by every replica of the gateway. It is safe for
// concurrent use; build it with NewStore. Errors from Redis are wrapped and returned
// as they are; callers decide whether to fail open or closed.
//
// Every key it uses starts with "<prefix>{apikeys}:", so on Redis Cluster all of
// them live in one hash slot and each change runs as one atomic Lua script:
//
//	<base>k:<hex sha256>     hash: rec = the Key as JSON without last_used_at,
//	                         used = last use (16 hex digits, see below), by = creator
//	<base>ids                hash: key ID -> hex hash
//	<base>z:<sort>           sorted set, all scores 0, ordered by member bytes, one
//	                         per sort field (name, created_at, expires_at,
//	                         last_used_at); members are "<lower(name)>\x00<id>" or
//	                         "<16 hex digits of the Unix ms, sign bit flipped><id>";
//	                         never-expiring keys use ffff…, never-used keys 0000…
//	<base>u:<creator>:z:<sort>  the same four indexes for one creator's keys
//	<base>u:<creator>:active    sorted set: ids of the creator's keys that are not
//	                         revoked, scored by expiry (Unix ms; +inf for never)
//
// ByHash is a single HMGET. List walks one index from the cursor (an index member)
// in batches, each one round trip; see List for the cost of each filter.
type Store struct {
	rdb   redis.UniversalClient
	base  string
	now   func() time.Time
	batch int // index members read per round trip of List; tests lower it
}

// NewStore returns a Store on rdb whose key names start with prefix (the gateway's
// Redis key prefix) and whose clock is now (time.Now if nil).
func NewStore(rdb redis.UniversalClient, prefix string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, base: prefix + "{apikeys}:", now: now, batch: 1000}
}

func (s *Store) recKey(hexHash string) string { return s.base + "k:" + hexHash }
func (s *Store) idsKey() string               { return s.base + "ids" }
func (s *Store) index(sort string) string     { return s.base + "z:" + sort }
func (s *Store) creatorIndex(by, sort string) string {
	return s.base + "u:" + by + ":z:" + sort
}

// activeKey is the creator's active set: a sorted set of the ids of their keys that are
// not revoked, scored by expiry (Unix ms, +inf for never), for CreateLimited. Expired
// members are dropped when counted; a refresh or edit re-scores the key.
func (s *Store) activeKey(by string) string { return s.base + "u:" + by + ":active" }

// Create stores k under hash. It returns ErrInvalid for a malformed record and
// ErrConflict when hash or k.ID is already stored. A zero CreatedAt becomes now.
func (s *Store) Create(ctx context.Context, k Key, hash [32]byte) error {
	return s.CreateLimited(ctx, k, hash, 0)
}

// CreateLimited is Create, refused with an error wrapping ErrOwnerLimit when k's creator
// already holds maxActive keys that are neither revoked nor expired (maxActive <= 0: no
// limit). The count and the insert are one atomic script, so concurrent creates cannot
// pass the limit together.
func (s *Store) CreateLimited(ctx context.Context, k Key, hash [32]byte, maxActive int) error {
	if err := validateNew(k); err != nil {
		return fmt.Errorf("apikey: create %s: %w", k.ID, err)
	}
	k = k.clone()
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	used := ""
	if k.LastUsedAt != nil {
		t := truncMilli(*k.LastUsedAt)
		k.LastUsedAt = &t
		used = encodeTime(t)
	}
	rec, err := encodeRecord(k)
	if err != nil {
		return fmt.Errorf("apikey: create %s: %w", k.ID, err)
	}
	h := hex.EncodeToString(hash[:])
	keys := []string{s.idsKey(), s.recKey(h)}
	args := []any{k.ID, h, rec, used, k.CreatedBy}
	for _, f := range sortFields {
		keys = append(keys, s.index(f))
		args = append(args, member(k, f))
	}
	for _, f := range sortFields {
		keys = append(keys, s.creatorIndex(k.CreatedBy, f))
	}
	keys = append(keys, s.activeKey(k.CreatedBy))
	args = append(args, max(maxActive, 0), s.now().UnixMilli(), activeScore(k))
	args = append(args, s.hygieneArgs(k)...)
	res, err := createScript.Run(ctx, s.rdb, keys, args...).Text()
	switch {
	case err != nil:
		return fmt.Errorf("apikey: create %s: %w", k.ID, err)
	case res == "hash" || res == "id":
		return fmt.Errorf("apikey: create %s: %s: %w", k.ID, res, ErrConflict)
	case res == "limit":
		return fmt.Errorf("apikey: create %s: %w", k.ID, &OwnerLimitError{Max: maxActive})
	}
	return nil
}

// Get returns the key with ID id, or ErrNotFound. It is one round trip.
func (s *Store) Get(ctx context.Context, id string) (Key, error) {
	k, _, _, err := s.get(ctx, id)
	if err != nil {
		return Key{}, fmt.Errorf("apikey: get %s: %w", id, err)
	}
	return k, nil
}

// get returns the key with ID id, its hex hash and its raw record.
func (s *Store) get(ctx context.Context, id string) (k Key, hexHash, rec string, err error) {
	v, err := getScript.Run(ctx, s.rdb, []string{s.idsKey()}, s.base, id).Slice()
	if errors.Is(err, redis.Nil) {
		return Key{}, "", "", ErrNotFound
	}
	if err != nil {
		return Key{}, "", "", err
	}
	if len(v) != 3 {
		return Key{}, "", "", fmt.Errorf("unexpected reply of %d values", len(v))
	}
	hexHash, _ = v[0].(string)
	rec, ok := v[1].(string)
	if !ok {
		return Key{}, "", "", ErrNotFound // the ids entry outlived its record
	}
	k, err = decodeRecord(rec, v[2])
	return k, hexHash, rec, err
}

// ByHash returns the key stored under hash, or ErrNotFound. It is the
// authentication lookup: exactly one Redis command (HMGET).
func (s *Store) ByHash(ctx context.Context, hash [32]byte) (Key, error) {
	v, err := s.rdb.HMGet(ctx, s.recKey(hex.EncodeToString(hash[:])), "rec", "used").Result()
	if err != nil {
		return Key{}, fmt.Errorf("apikey: lookup by hash: %w", err)
	}
	rec, ok := v[0].(string)
	if !ok {
		return Key{}, fmt.Errorf("apikey: lookup by hash: %w", ErrNotFound)
	}
	k, err := decodeRecord(rec, v[1])
	if err != nil {
		return Key{}, fmt.Errorf("apikey: lookup by hash: %w", err)
	}
	return k, nil
}

// Update copies the editable fields of k (name, description, scopes, allowed IPs,
// expires_at, expires_in_days, rate limit) onto the stored key with ID k.ID, moving
// its name and expiry index entries in the same script. Other fields of k are
// ignored. A revoked key can be edited but stays revoked. It returns ErrNotFound or
// ErrInvalid.
func (s *Store) Update(ctx context.Context, k Key) error {
	if err := validateEdit(k); err != nil {
		return fmt.Errorf("apikey: update %s: %w: %w", k.ID, ErrInvalid, err)
	}
	_, err := s.modify(ctx, k.ID, func(old Key) Key { return old.applyEdit(k) })
	if err != nil {
		return fmt.Errorf("apikey: update %s: %w", k.ID, err)
	}
	return nil
}

// Revoke marks the key revoked at at and returns it. Revoking a revoked key keeps
// its first revocation time and is not an error. It returns ErrNotFound for an
// unknown id.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) (Key, error) {
	k, err := s.modify(ctx, id, func(old Key) Key {
		if old.RevokedAt == nil {
			old.RevokedAt = &at
		}
		return old
	})
	if err != nil {
		return Key{}, fmt.Errorf("apikey: revoke %s: %w", id, err)
	}
	return k, nil
}

// MarkRotated records that rotation made the key replacedBy from key id and, when end
// is set, that key id ends at end at the latest: its expiry and hard end only move
// earlier, and later edits cannot move its expiry beyond the hard end. It returns the
// key, or ErrNotFound.
func (s *Store) MarkRotated(ctx context.Context, id, replacedBy string, end *time.Time) (Key, error) {
	k, err := s.modify(ctx, id, func(old Key) Key { return old.markRotated(replacedBy, end) })
	if err != nil {
		return Key{}, fmt.Errorf("apikey: mark rotated %s: %w", id, err)
	}
	return k, nil
}

// modify reads the key id, applies edit and writes it back if nobody changed it in
// between, retrying otherwise.
func (s *Store) modify(ctx context.Context, id string, edit func(Key) Key) (Key, error) {
	for i := range casAttempts {
		if err := cas.Pause(ctx, i); err != nil {
			return Key{}, err
		}
		old, h, oldRec, err := s.get(ctx, id)
		if err != nil {
			return Key{}, err
		}
		k := edit(old.clone())
		rec, err := encodeRecord(k)
		if err != nil {
			return Key{}, err
		}
		if rec == oldRec {
			return k, nil
		}
		keys := []string{
			s.recKey(h),
			s.index(SortName), s.index(SortExpiresAt),
			s.creatorIndex(old.CreatedBy, SortName), s.creatorIndex(old.CreatedBy, SortExpiresAt),
		}
		args := []any{oldRec, rec,
			member(old, SortName), member(k, SortName),
			member(old, SortExpiresAt), member(k, SortExpiresAt),
			s.activeKey(old.CreatedBy), k.ID, activeScore(k)}
		ok, err := casScript.Run(ctx, s.rdb, keys, append(args, s.hygieneArgs(k)...)...).Int()
		if err != nil {
			return Key{}, err
		}
		if ok == 1 {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("record kept changing after %d attempts: %w", casAttempts, ErrConflict)
}

// TouchLastUsed records last-use times, by key ID, at millisecond precision, in one
// pipeline of scripts (one per 256 keys). A time only moves a key's last use
// forward; unknown IDs are ignored.
func (s *Store) TouchLastUsed(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	var chunks [][]any
	args := []any{s.base, timeUnused}
	for id, at := range used {
		args = append(args, id, encodeTime(at))
		if len(args) == 2+2*touchChunk {
			chunks = append(chunks, args)
			args = []any{s.base, timeUnused}
		}
	}
	if len(args) > 2 {
		chunks = append(chunks, args)
	}
	keys := []string{s.idsKey()}
	var cmds []*redis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, a := range chunks {
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
			cmds = append(cmds, touchScript.Eval(ctx, p, keys, a...))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apikey: touch last used: %w", err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return fmt.Errorf("apikey: touch last used: %w", err)
		}
	}
	return nil
}

// List returns one page of keys; see Query. It returns ErrInvalid for a bad query.
//
// It walks one index from the cursor: the creator's when CreatedBy is set, else the
// global one, for the sort field. A page costs O(log n + c) for c candidates
// examined, in round trips of up to 1,000 candidates:
//   - no filter, or only CreatedBy: c = Limit+1.
//   - Name: the exact name is a range of the name index; every key with that name
//     (within the creator's keys if CreatedBy is set) is read and sorted, on every
//     page: c = the keys with that name.
//   - Q (a substring), Environment, Status, MintedBy, Team and the hygiene flags are not
//     indexed: they filter the candidates, so c grows to the number of keys walked past
//     before Limit+1 match, up to every key in the index when few match.
func (s *Store) List(ctx context.Context, q Query) (Page, error) {
	lq, err := q.validate()
	if err != nil {
		return Page{}, fmt.Errorf("apikey: list: %w", err)
	}
	now := s.now()
	idx := s.index
	if lq.CreatedBy != "" {
		idx = func(sort string) string { return s.creatorIndex(lq.CreatedBy, sort) }
	}
	var cands []candidate

	if lq.Name != "" {
		// Read every key of that name, then order them by the requested field.
		lo, hi := nameRange(lq.Name)
		err := s.walk(ctx, idx(SortName), false, lo, hi, func(_ string, k Key) bool {
			if m := member(k, lq.Sort); lq.match(k, now) && lq.beyond(m) {
				cands = append(cands, candidate{m, k})
			}
			return false
		})
		if err != nil {
			return Page{}, fmt.Errorf("apikey: list: %w", err)
		}
		sortCandidates(cands, lq.desc)
	} else {
		lo, hi := "-", "+"
		if lq.after != "" {
			if lq.desc {
				hi = "(" + lq.after
			} else {
				lo = "(" + lq.after
			}
		}
		err := s.walk(ctx, idx(lq.Sort), lq.desc, lo, hi, func(m string, k Key) bool {
			if lq.match(k, now) {
				cands = append(cands, candidate{m, k})
			}
			return len(cands) > lq.Limit
		})
		if err != nil {
			return Page{}, fmt.Errorf("apikey: list: %w", err)
		}
	}

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

// walk calls fn for each record of index between the ZRANGEBYLEX bounds lo and hi,
// in order (reversed if desc), until fn returns true or the range ends.
func (s *Store) walk(ctx context.Context, index string, desc bool, lo, hi string, fn func(member string, k Key) bool) error {
	return s.walkRaw(ctx, index, desc, lo, hi, func(m, _ string, k Key) bool { return fn(m, k) })
}

// walkRaw is walk, also passing each key's stored record.
func (s *Store) walkRaw(ctx context.Context, index string, desc bool, lo, hi string, fn func(member, rec string, k Key) bool) error {
	batch := s.batch
	rev := "0"
	if desc {
		rev = "1"
	}
	keys := []string{index, s.idsKey()}
	for {
		v, err := pageScript.Run(ctx, s.rdb, keys, s.base, rev, lo, hi, batch, idLen).Slice()
		if err != nil {
			return err
		}
		for i := 0; i+2 < len(v); i += 3 {
			m, _ := v[i].(string)
			rec, ok := v[i+1].(string)
			if !ok {
				continue // an index entry without a record: skip it
			}
			k, err := decodeRecord(rec, v[i+2])
			if err != nil {
				return err
			}
			if fn(m, rec, k) {
				return nil
			}
		}
		if len(v) < 3*batch {
			return nil
		}
		last, _ := v[len(v)-3].(string)
		if desc {
			hi = "(" + last
		} else {
			lo = "(" + last
		}
	}
}

// encodeRecord is the stored form of k: its JSON without the last-use time, which
// lives in its own field so that touching a key never rewrites the record.
func encodeRecord(k Key) (string, error) {
	k.LastUsedAt = nil
	b, err := json.Marshal(k)
	if err != nil {
		return "", fmt.Errorf("encode record: %w", err)
	}
	return string(b), nil
}

// decodeRecord is the inverse of encodeRecord; used is the "used" field, a string of
// 16 hex digits or nil.
func decodeRecord(rec string, used any) (Key, error) {
	var k Key
	if err := json.Unmarshal([]byte(rec), &k); err != nil {
		return Key{}, fmt.Errorf("decode record: %w", err)
	}
	if u, ok := used.(string); ok {
		t, err := decodeTime(u)
		if err != nil {
			return Key{}, fmt.Errorf("decode record %s: last used: %w", k.ID, err)
		}
		k.LastUsedAt = &t
	}
	return k, nil
}

// decodeTime is the inverse of encodeTime.
func decodeTime(s string) (time.Time, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) != 16 {
		return time.Time{}, fmt.Errorf("bad time %q", s)
	}
	return time.UnixMilli(int64(v ^ (1 << 63))).UTC(), nil
}
