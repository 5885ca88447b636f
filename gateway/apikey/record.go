package apikey

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authgate/authgate/gateway/randid"
	"github.com/authgate/authgate/gateway/user"
)

// Sentinel errors of the stores. Compare with errors.Is.
var (
	// ErrNotFound is returned when no key has the given ID or hash.
	ErrNotFound = errors.New("apikey: not found")
	// ErrConflict is returned by Create when the hash or the ID is already stored.
	ErrConflict = errors.New("apikey: conflict")
	// ErrInvalid is returned for a malformed record or query: a bad ID, type,
	// environment or name, an unknown sort, order or status, a negative limit, or a
	// cursor that this query did not produce.
	ErrInvalid = errors.New("apikey: invalid argument")
)

// Key types.
const (
	Personal = "personal"
	Admin    = "admin"
)

// Team values of Key.Team and Query.Team besides team IDs.
const (
	// AllTeams binds an admin key to every team.
	AllTeams = "*"
	// NoTeam, in Query.Team, selects the keys bound to no team (Key.Team "").
	NoTeam = "none"
)

// TeamOf is the team key k acts for: k.Team, except that an admin key bound to no team
// (made before teams existed) acts for every team (AllTeams). A personal key bound to no
// team acts for none: it is refused on every route that names a team.
func (k Key) TeamOf() string {
	if k.Team == "" && k.Type == Admin {
		return AllTeams
	}
	return k.Team
}

// Statuses reported by Key.Status and accepted by Query.Status.
const (
	StatusActive  = "active"
	StatusExpired = "expired"
	StatusRevoked = "revoked"
)

// Sort fields accepted by Query.Sort.
const (
	SortName       = "name"
	SortCreatedAt  = "created_at"
	SortExpiresAt  = "expires_at"
	SortLastUsedAt = "last_used_at"
)

// Orders accepted by Query.Order.
const (
	Asc  = "asc"
	Desc = "desc"
)

// List limits.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

const (
	idPrefix = "key_"
	// idRandLen is the number of base62 characters after "key_" (about 119 bits).
	idRandLen = 20
	idLen     = len(idPrefix) + idRandLen
)

// RateLimit is a key's own rate limit, overriding the configured one.
type RateLimit struct {
	// Requests is the number of requests allowed per Per.
	Requests int `json:"requests"`
	// Per is the window Requests applies to.
	Per time.Duration `json:"per"`
}

// Key is the stored record of an API key. It never holds the
// plaintext nor the hash: the stores keep the hash beside the record, so encoding a
// Key (JSON, %v, slog) cannot leak anything that helps to guess the key. Start is the
// first StartLen characters of the plaintext, public by design.
type Key struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Description   string     `json:"description"`
	Type          string     `json:"type"`        // Personal or Admin
	Environment   string     `json:"environment"` // Live or Test
	Scopes        []string   `json:"scopes"`      // empty: all of the owner's (personal keys)
	AllowedIPs    []string   `json:"allowed_ips"` // IPs or CIDRs; empty: any
	CreatedBy     string     `json:"created_by"`  // user ID
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     *time.Time `json:"expires_at"` // nil: never
	ExpiresInDays int        `json:"expires_in_days"`
	LastUsedAt    *time.Time `json:"last_used_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
	Start         string     `json:"start"`
	RateLimit     *RateLimit `json:"rate_limit"`
	// Team is the team the key acts for: a team ID, AllTeams (admin keys only), or ""
	// for a key made before teams existed or by a creator in no team (see TeamOf).
	Team string `json:"team"`
	// MintedBy is the principal that made the key: "key:<lineage>" for a key (see
	// Lineage), "user:<subject>" for a user's token, "cli" for the CLI's direct mode,
	// "bootstrap" for bootstrap.admin_key. "" on records older than the field, which no
	// key caller owns. Non-admin key callers manage only the keys they minted.
	MintedBy string `json:"minted_by"`
	// Lineage is the ID of the first key of this key's rotation chain; "" means the key's
	// own ID (see LineageID). A rotated key keeps it, so keys minted by the old key stay
	// manageable by the new one.
	Lineage string `json:"lineage,omitempty"`
	// ReplacedBy is the ID of the key a rotation made from this one.
	ReplacedBy string `json:"replaced_by,omitempty"`
	// HardExpiresAt is the end a rotation with a grace period gave the key: no refresh
	// or edit moves ExpiresAt beyond it (see MarkRotated).
	HardExpiresAt *time.Time `json:"hard_expires_at,omitempty"`
}

// Principal names of the minting principals that are not keys or users (Key.MintedBy).
const (
	MintedByCLI       = "cli"
	MintedByBootstrap = "bootstrap"
)

// LineageID is the ID that keys minted by k record (as "key:<LineageID>"): the ID of the
// first key of k's rotation chain.
func (k Key) LineageID() string {
	if k.Lineage != "" {
		return k.Lineage
	}
	return k.ID
}

// MintedByKey is the MintedBy of keys made by the key k.
func MintedByKey(k Key) string { return "key:" + k.LineageID() }

// MintedByUser is the MintedBy of keys made with a token of subject.
func MintedByUser(subject string) string { return "user:" + subject }

// Status returns StatusRevoked once the key is revoked, else StatusExpired from its
// expiry time on (inclusive), else StatusActive.
func (k Key) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return StatusRevoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return StatusExpired
	default:
		return StatusActive
	}
}

// clone returns a deep copy of k, so that callers and stores never share slices or
// pointers.
func (k Key) clone() Key {
	k.Scopes = cloneStrings(k.Scopes)
	k.AllowedIPs = cloneStrings(k.AllowedIPs)
	k.ExpiresAt = cloneTime(k.ExpiresAt)
	k.LastUsedAt = cloneTime(k.LastUsedAt)
	k.RevokedAt = cloneTime(k.RevokedAt)
	k.HardExpiresAt = cloneTime(k.HardExpiresAt)
	if k.RateLimit != nil {
		rl := *k.RateLimit
		k.RateLimit = &rl
	}
	return k
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// applyEdit copies the editable fields of e onto k: name, description, scopes,
// allowed IPs, expiry and rate limit. Everything else is kept. The expiry never passes
// the stored key's hard end: an edit read before a rotation cannot undo its grace period.
func (k Key) applyEdit(e Key) Key {
	e = e.clone()
	k.Name = e.Name
	k.Description = e.Description
	k.Scopes = e.Scopes
	k.AllowedIPs = e.AllowedIPs
	k.ExpiresAt = e.ExpiresAt
	k.ExpiresInDays = e.ExpiresInDays
	k.RateLimit = e.RateLimit
	k.Team = e.Team
	k.ExpiresAt = capTime(k.ExpiresAt, k.HardExpiresAt)
	return k
}

// markRotated records on k that rotation made replacedBy from it and, when end is set,
// that k ends at end at the latest (its expiry and its hard end only move earlier).
func (k Key) markRotated(replacedBy string, end *time.Time) Key {
	k.ReplacedBy = replacedBy
	if end != nil {
		k.HardExpiresAt = capTime(cloneTime(end), k.HardExpiresAt)
		k.ExpiresAt = capTime(k.ExpiresAt, k.HardExpiresAt)
	}
	return k
}

// capTime is t, or end when end is set and t is nil or after it.
func capTime(t, end *time.Time) *time.Time {
	if end != nil && (t == nil || t.After(*end)) {
		return cloneTime(end)
	}
	return t
}

// NewID returns a new public key ID: "key_" and 20 base62 characters from crypto/rand.
func NewID() string {
	return randid.New(idPrefix, idRandLen)
}

// IsID reports whether s has the form of a key ID (what NewID returns): clients use it
// to tell an ID from a key's name.
func IsID(s string) bool { return validID(s) }

// validID reports whether id has the form NewID produces.
func validID(id string) bool {
	if len(id) != idLen || !strings.HasPrefix(id, idPrefix) {
		return false
	}
	for i := len(idPrefix); i < len(id); i++ {
		if strings.IndexByte(base62, id[i]) < 0 {
			return false
		}
	}
	return true
}

// validateNew checks a record before Create.
func validateNew(k Key) error {
	var errs []error
	if !validID(k.ID) {
		errs = append(errs, fmt.Errorf("id %q: want %q and %d base62 characters", k.ID, idPrefix, idRandLen))
	}
	if k.Type != Personal && k.Type != Admin {
		errs = append(errs, fmt.Errorf("type %q: want personal or admin", k.Type))
	}
	if k.Environment != Live && k.Environment != Test {
		errs = append(errs, fmt.Errorf("environment %q: want live or test", k.Environment))
	}
	if err := validateEdit(k); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// validateEdit checks the editable fields. Names must be valid UTF-8 without NUL,
// because the name index separates the lower-cased name from the ID with a NUL byte
// and bounds prefix searches with 0xff, a byte UTF-8 never contains.
func validateEdit(k Key) error {
	switch {
	case k.Name == "":
		return errors.New("name: required")
	case !utf8.ValidString(k.Name) || strings.IndexByte(k.Name, 0) >= 0:
		return errors.New("name: must be valid UTF-8 without NUL")
	case k.ExpiresInDays < 0:
		return fmt.Errorf("expires_in_days: must be >= 0, got %d", k.ExpiresInDays)
	case k.RateLimit != nil && (k.RateLimit.Requests <= 0 || k.RateLimit.Per <= 0):
		return errors.New("rate_limit: requests and per must be > 0")
	case k.Team != "" && k.Team != AllTeams && !user.ValidTeamID(k.Team):
		return fmt.Errorf("team: %q is not a team ID", k.Team)
	}
	return nil
}

// Query selects and orders a page of keys for List.
type Query struct {
	// Q keeps keys whose name contains Q, compared case-insensitively (strings.ToLower
	// of both), and, when Q reads "key_…", the keys whose ID starts with Q. It is not
	// indexed: it filters the candidates, like Status. Empty: any name.
	Q string
	// Name keeps the keys named exactly Name (case and all). It is answered from the
	// name index, so it stays cheap however many keys there are. Empty: any name.
	Name string
	// CreatedBy keeps the keys of one user ID. Empty: every user's.
	CreatedBy string
	// MintedBy keeps the keys one principal made (Key.MintedBy). Empty: any. It is not
	// indexed: it filters the candidates, like Environment.
	MintedBy string
	// Environment keeps Live or Test keys. Empty: both.
	Environment string
	// Team keeps the keys that act for one team (a team ID, AllTeams, or NoTeam for keys
	// of none), as Key.TeamOf says: AllTeams finds admin keys made before teams too.
	// Empty: any. Not indexed: it filters the candidates.
	Team string
	// Status keeps StatusActive, StatusExpired or StatusRevoked keys, judged at
	// the store's current time. Empty: any.
	Status string
	// Stale, Unused and Expiring keep the keys with that hygiene flag under Hygiene's
	// thresholds, judged at the store's current time; several combine (all must hold).
	// They are not indexed: they filter the candidates, like Status.
	Stale, Unused, Expiring bool
	// Hygiene holds the thresholds the flag filters use (api_keys.hygiene).
	Hygiene Hygiene
	// Sort is SortName, SortCreatedAt, SortExpiresAt or SortLastUsedAt.
	// Default: SortCreatedAt. Names sort case-insensitively; keys that never
	// expire sort after every expiry time, keys never used before every use time;
	// ties break on ID.
	Sort string
	// Order is Asc or Desc. Default: Asc for SortName, else Desc (newest first).
	Order string
	// Limit is the page size. Default (0): DefaultLimit; larger than MaxLimit
	// means MaxLimit; negative is ErrInvalid.
	Limit int
	// Cursor is Page.NextCursor of the previous page of the same query; empty
	// for the first page.
	Cursor string
}

// Page is one page of List.
type Page struct {
	Keys []Key
	// NextCursor fetches the next page; empty when this is the last page.
	NextCursor string
}

// listQuery is a validated Query with its cursor decoded.
type listQuery struct {
	Query
	desc  bool
	after string // exclusive bound: an index member; "" on the first page
	q     string // lower-cased Q
}

// cursor is what Page.NextCursor encodes. The sort and order are kept so that a
// cursor cannot be replayed against another ordering.
type cursor struct {
	Sort   string `json:"s"`
	Order  string `json:"o"`
	Member string `json:"m"` // the last returned key's index member
}

func (q Query) validate() (listQuery, error) {
	lq := listQuery{Query: q, q: strings.ToLower(q.Q)}
	if lq.Sort == "" {
		lq.Sort = SortCreatedAt
	}
	switch lq.Sort {
	case SortName, SortCreatedAt, SortExpiresAt, SortLastUsedAt:
	default:
		return lq, fmt.Errorf("%w: sort %q: use one of %s, %s, %s, %s", ErrInvalid, q.Sort, SortName, SortCreatedAt, SortExpiresAt, SortLastUsedAt)
	}
	if lq.Order == "" {
		lq.Order = Desc
		if lq.Sort == SortName {
			lq.Order = Asc
		}
	}
	switch lq.Order {
	case Asc:
	case Desc:
		lq.desc = true
	default:
		return lq, fmt.Errorf("%w: order %q: use %s or %s", ErrInvalid, q.Order, Asc, Desc)
	}
	switch lq.Status {
	case "", StatusActive, StatusExpired, StatusRevoked:
	default:
		return lq, fmt.Errorf("%w: status %q: use one of %s, %s, %s", ErrInvalid, q.Status, StatusActive, StatusExpired, StatusRevoked)
	}
	switch lq.Environment {
	case "", Live, Test:
	default:
		return lq, fmt.Errorf("%w: environment %q: use %s or %s", ErrInvalid, q.Environment, Live, Test)
	}
	switch {
	case lq.Limit < 0:
		return lq, fmt.Errorf("%w: limit %d: must be 1 to %d", ErrInvalid, q.Limit, MaxLimit)
	case lq.Limit == 0:
		lq.Limit = DefaultLimit
	case lq.Limit > MaxLimit:
		lq.Limit = MaxLimit
	}
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		var c cursor
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil || c.Sort != lq.Sort || c.Order != lq.Order || c.Member == "" {
			return lq, fmt.Errorf("%w: cursor: pass next_cursor from the previous page, with the same sort and order", ErrInvalid)
		}
		lq.after = c.Member
	}
	return lq, nil
}

// nextCursor encodes the position after member.
func (lq listQuery) nextCursor(member string) string {
	raw, _ := json.Marshal(cursor{Sort: lq.Sort, Order: lq.Order, Member: member}) // cannot fail
	return base64.RawURLEncoding.EncodeToString(raw)
}

// beyond reports whether member comes after the cursor in the query's order.
func (lq listQuery) beyond(member string) bool {
	if lq.after == "" {
		return true
	}
	if lq.desc {
		return member < lq.after
	}
	return member > lq.after
}

// match reports whether k passes the query's filters other than the position.
func (lq listQuery) match(k Key, now time.Time) bool {
	return (lq.CreatedBy == "" || k.CreatedBy == lq.CreatedBy) &&
		(lq.MintedBy == "" || k.MintedBy == lq.MintedBy) &&
		(lq.Environment == "" || k.Environment == lq.Environment) &&
		(lq.Team == "" || k.TeamOf() == lq.Team || (lq.Team == NoTeam && k.TeamOf() == "")) &&
		(lq.Status == "" || k.Status(now) == lq.Status) &&
		lq.matchHygiene(k, now) &&
		(lq.Name == "" || k.Name == lq.Name) &&
		(lq.q == "" || strings.Contains(strings.ToLower(k.Name), lq.q) ||
			(len(lq.Q) > len(idPrefix) && strings.HasPrefix(lq.Q, idPrefix) && strings.HasPrefix(k.ID, lq.Q)))
}

// nameRange is the ZRANGEBYLEX range of the name index that holds every key named
// name, whatever its case: the members are the lower-cased name, NUL, and the ID.
func nameRange(name string) (lo, hi string) {
	l := strings.ToLower(name) + "\x00"
	return "[" + l, "(" + l + "\xff"
}

// Index members. Every sort index orders its members bytewise, and every member ends
// with the key's fixed-length ID, so ties break on ID and a member names its key.
// Times are 16 hex digits of the Unix millisecond with the sign bit flipped, so
// bytewise order is time order (before 1970 too).
const (
	timeNever  = "ffffffffffffffff" // expires_at of a key that never expires: last
	timeUnused = "0000000000000000" // last_used_at of a key never used: first
)

func encodeTime(t time.Time) string {
	return fmt.Sprintf("%016x", uint64(t.UnixMilli())^(1<<63))
}

// member returns k's member of the index for sort.
func member(k Key, sort string) string {
	switch sort {
	case SortName:
		return strings.ToLower(k.Name) + "\x00" + k.ID
	case SortCreatedAt:
		return encodeTime(k.CreatedAt) + k.ID
	case SortExpiresAt:
		if k.ExpiresAt == nil {
			return timeNever + k.ID
		}
		return encodeTime(*k.ExpiresAt) + k.ID
	case SortLastUsedAt:
		if k.LastUsedAt == nil {
			return timeUnused + k.ID
		}
		return encodeTime(*k.LastUsedAt) + k.ID
	}
	panic("apikey: unknown sort " + sort) // validated by Query.validate
}

// sortFields are the indexed sort fields, in the order the Redis scripts take them.
var sortFields = []string{SortName, SortCreatedAt, SortExpiresAt, SortLastUsedAt}

// truncMilli returns t at millisecond precision in UTC, the precision last-use times
// are stored with.
func truncMilli(t time.Time) time.Time {
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// PerString is Per written compactly, as people write it: "1m", "1h30m", "500ms" (not
// time.Duration's "1m0s").
func (r RateLimit) PerString() string {
	s := r.Per.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// candidate is a key List considers, with its member in the sort index.
type candidate struct {
	member string
	key    Key
}

// sortCandidates orders cands by index member, descending when desc.
func sortCandidates(cands []candidate, desc bool) {
	slices.SortFunc(cands, func(a, b candidate) int {
		if desc {
			a, b = b, a
		}
		return strings.Compare(a.member, b.member)
	})
}
