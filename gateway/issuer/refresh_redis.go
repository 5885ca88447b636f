package issuer

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed refresh_issue.lua
	issueLua string
	//go:embed refresh_rotate.lua
	rotateLua string
	//go:embed refresh_revoke.lua
	revokeLua string
)

// revokeUserRounds bounds how often RevokeUser goes back for families issued while it ran.
const revokeUserRounds = 5

// RedisRefreshStore is a RefreshStore in Redis, shared by every replica. Every key lives
// under one hash tag, "<prefix>{refresh}:", so that each script's keys share a Redis
// Cluster slot:
//
//	tok:<sha256 hex>  hash: u user, f family, x expiry (unix ms), s "1" once spent; with
//	                  a reuse grace also sa spent at (unix ms), n its successor sealed
//	                  under it (see sealSuccessor), nx the successor's expiry
//	fam:<family>      hash: u user, x expiry of its newest token, r "1" once revoked,
//	                  e the user's session epoch when the family began
//	user:<user>       sorted set of the user's family IDs, scored by family expiry
//
// Each key expires (PEXPIREAT) with the last token it describes. Expiry is also checked
// against the injected clock, which should be close to the Redis server's. It is safe for
// concurrent use.
type RedisRefreshStore struct {
	rdb    redis.UniversalClient
	base   string // prefix + "{refresh}:"
	now    func() time.Time
	grace  time.Duration
	issue  *redis.Script
	rotate *redis.Script
	revoke *redis.Script
}

var _ RefreshStore = (*RedisRefreshStore)(nil)

// NewRedisRefreshStore returns a RedisRefreshStore on rdb whose keys start with prefix
// (e.g. the store's key_prefix "authgate:"). A nil now means time.Now.
func NewRedisRefreshStore(rdb redis.UniversalClient, prefix string, now func() time.Time) *RedisRefreshStore {
	if now == nil {
		now = time.Now
	}
	return &RedisRefreshStore{
		rdb:    rdb,
		base:   prefix + "{refresh}:",
		now:    now,
		issue:  redis.NewScript(issueLua),
		rotate: redis.NewScript(rotateLua),
		revoke: redis.NewScript(revokeLua),
	}
}

// WithReuseGrace sets how long after a token is spent it may be exchanged again, for the
// same successor, without revoking its family (0, the default, means never), and returns
// r. Call it before r is used.
func (r *RedisRefreshStore) WithReuseGrace(d time.Duration) *RedisRefreshStore {
	r.grace = max(d, 0)
	return r
}

// tokKey, famKey and userKey return the Redis keys of a token hash, a family and a user.
func (r *RedisRefreshStore) tokKey(hash string) string { return r.base + "tok:" + hash }
func (r *RedisRefreshStore) famKey(fam string) string  { return r.base + "fam:" + fam }
func (r *RedisRefreshStore) userKey(u string) string   { return r.base + "user:" + u }

// Issue starts a new family for userID and returns its first token, valid for ttl.
func (r *RedisRefreshStore) Issue(ctx context.Context, userID string, ttl time.Duration) (string, time.Time, error) {
	s, err := r.IssueSession(ctx, userID, 0, ttl)
	return s.Token, s.ExpiresAt, err
}

// IssueSession is Issue, with the new family's id.
func (r *RedisRefreshStore) IssueSession(ctx context.Context, userID string, epoch int64, ttl time.Duration) (Rotated, error) {
	if err := checkIssue(userID, ttl); err != nil {
		return Rotated{}, err
	}
	token, hash := newRefreshToken()
	fam := newFamilyID()
	now := r.now()
	exp := expiry(now, ttl)
	keys := []string{r.tokKey(hash), r.famKey(fam), r.userKey(userID)}
	if err := r.issue.Run(ctx, r.rdb, keys, userID, fam, exp.UnixMilli(), now.UnixMilli(), epoch).Err(); err != nil {
		return Rotated{}, fmt.Errorf("issuer: refresh issue: %w", err)
	}
	return Rotated{UserID: userID, Family: fam, Token: token, ExpiresAt: exp, Epoch: epoch, HasEpoch: true}, nil
}

// RevokeSession revokes family when it belongs to userID.
func (r *RedisRefreshStore) RevokeSession(ctx context.Context, userID, family string) error {
	if !strings.HasPrefix(family, familyPrefix) || len(family) != len(familyPrefix)+familyChars {
		return ErrRefreshInvalid
	}
	owner, err := r.rdb.HGet(ctx, r.famKey(family), "u").Result()
	switch {
	case errors.Is(err, redis.Nil):
		return ErrRefreshInvalid
	case err != nil:
		return fmt.Errorf("issuer: refresh revoke session: %w", err)
	case owner != userID:
		return ErrRefreshInvalid
	}
	keys := []string{r.userKey(userID), r.famKey(family)}
	if err := r.revoke.Run(ctx, r.rdb, keys, r.now().UnixMilli(), family).Err(); err != nil {
		return fmt.Errorf("issuer: refresh revoke session: %w", err)
	}
	return nil
}

// Rotate spends token and returns the next token of its family, valid for ttl, in one
// atomic script. See RefreshStore for the errors.
func (r *RedisRefreshStore) Rotate(ctx context.Context, token string, ttl time.Duration) (Rotated, error) {
	if !validRefreshForm(token) {
		return Rotated{}, ErrRefreshInvalid
	}
	if err := checkTTL("rotate", ttl); err != nil {
		return Rotated{}, err
	}
	hash := hashRefresh(token)
	user, fam, err := r.owner(ctx, hash, "rotate")
	if err != nil {
		return Rotated{}, err
	}
	next, nextHash := newRefreshToken()
	sealed := ""
	if r.grace > 0 {
		if sealed, err = sealSuccessor(token, next); err != nil {
			return Rotated{}, fmt.Errorf("issuer: refresh rotate: %w", err)
		}
	}
	now := r.now()
	exp := expiry(now, ttl)
	keys := []string{r.tokKey(hash), r.tokKey(nextHash), r.famKey(fam), r.userKey(user)}
	res, err := r.rotate.Run(ctx, r.rdb, keys, now.UnixMilli(), exp.UnixMilli(), fam, user,
		r.grace.Milliseconds(), sealed).StringSlice()
	if err != nil {
		return Rotated{}, fmt.Errorf("issuer: refresh rotate: %w", err)
	}
	if len(res) == 0 {
		return Rotated{}, errors.New("issuer: refresh rotate: empty script result")
	}
	switch res[0] {
	case "ok", "grace":
		rot := Rotated{UserID: user, Family: fam, Token: next, ExpiresAt: exp}
		if res[0] == "grace" {
			// A race within the reuse grace: the successor the first use returned.
			if len(res) != 3 {
				return Rotated{}, fmt.Errorf("issuer: refresh rotate: grace result of %d fields", len(res))
			}
			if rot.Token, err = openSuccessor(token, res[1]); err != nil {
				return Rotated{}, fmt.Errorf("issuer: refresh rotate: %w", err)
			}
			ms, err := strconv.ParseInt(res[2], 10, 64)
			if err != nil {
				return Rotated{}, fmt.Errorf("issuer: refresh rotate: successor expiry %q: %w", res[2], err)
			}
			rot.ExpiresAt = time.UnixMilli(ms).UTC()
		}
		// The family's epoch never changes once issued, so reading it after the script is
		// as good as inside it.
		e, err := r.rdb.HGet(ctx, r.famKey(fam), "e").Result()
		switch {
		case errors.Is(err, redis.Nil): // a family stored before epochs were recorded
		case err != nil:
			return Rotated{}, fmt.Errorf("issuer: refresh rotate: family epoch: %w", err)
		default:
			if rot.Epoch, err = strconv.ParseInt(e, 10, 64); err != nil {
				return Rotated{}, fmt.Errorf("issuer: refresh rotate: family epoch %q: %w", e, err)
			}
			rot.HasEpoch = true
		}
		return rot, nil
	case "invalid":
		return Rotated{}, ErrRefreshInvalid
	case "revoked":
		return Rotated{}, ErrRefreshRevoked
	case "reused":
		return Rotated{UserID: user, Family: fam}, ErrReused
	default:
		return Rotated{}, fmt.Errorf("issuer: refresh rotate: unexpected script result %q", res[0])
	}
}

// RevokeFamily revokes the family of token when token is live and belongs to userID; else
// it returns ErrRefreshInvalid.
func (r *RedisRefreshStore) RevokeFamily(ctx context.Context, userID, token string) error {
	if !validRefreshForm(token) {
		return ErrRefreshInvalid
	}
	hash := hashRefresh(token)
	rec, err := r.rdb.HMGet(ctx, r.tokKey(hash), "u", "f", "x").Result()
	if err != nil {
		return fmt.Errorf("issuer: refresh revoke family: %w", err)
	}
	user, _ := rec[0].(string)
	fam, _ := rec[1].(string)
	exp, _ := rec[2].(string)
	if user == "" || fam == "" || user != userID || !liveMillis(exp, r.now()) {
		return ErrRefreshInvalid
	}
	keys := []string{r.userKey(user), r.famKey(fam)}
	if err := r.revoke.Run(ctx, r.rdb, keys, r.now().UnixMilli(), fam).Err(); err != nil {
		return fmt.Errorf("issuer: refresh revoke family: %w", err)
	}
	return nil
}

// RevokeUser revokes every live family of userID. Families issued while it runs are
// revoked too: the script reports them and RevokeUser goes round again, at most a few times.
func (r *RedisRefreshStore) RevokeUser(ctx context.Context, userID string) error {
	userKey := r.userKey(userID)
	fams, err := r.rdb.ZRangeByScore(ctx, userKey, &redis.ZRangeBy{
		Min: fmt.Sprintf("(%d", r.now().UnixMilli()), Max: "+inf",
	}).Result()
	if err != nil {
		return fmt.Errorf("issuer: refresh revoke user: %w", err)
	}
	for range revokeUserRounds {
		keys := make([]string, 0, 1+len(fams))
		args := make([]any, 0, 1+len(fams))
		keys = append(keys, userKey)
		args = append(args, r.now().UnixMilli())
		for _, f := range fams {
			keys = append(keys, r.famKey(f))
			args = append(args, f)
		}
		missed, err := r.revoke.Run(ctx, r.rdb, keys, args...).StringSlice()
		if err != nil {
			return fmt.Errorf("issuer: refresh revoke user: %w", err)
		}
		if len(missed) == 0 {
			return nil
		}
		fams = missed
	}
	return errors.New("issuer: refresh revoke user: families kept being issued; try again")
}

// owner reads the immutable user and family of a token record, so that the script can be
// given every key it touches. A missing record is ErrRefreshInvalid.
func (r *RedisRefreshStore) owner(ctx context.Context, hash, op string) (user, fam string, err error) {
	rec, err := r.rdb.HMGet(ctx, r.tokKey(hash), "u", "f").Result()
	if err != nil {
		return "", "", fmt.Errorf("issuer: refresh %s: %w", op, err)
	}
	user, _ = rec[0].(string)
	fam, _ = rec[1].(string)
	if user == "" || fam == "" {
		return "", "", ErrRefreshInvalid
	}
	return user, fam, nil
}

// liveMillis reports whether a stored expiry (unix ms, decimal) is after now.
func liveMillis(exp string, now time.Time) bool {
	ms, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return false
	}
	return now.UnixMilli() < ms
}
