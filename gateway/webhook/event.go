// Package webhook delivers life-cycle events (key created, revoked, expiring, used from a
// new IP; user disabled) to configured HTTP receivers: off the request path, through a
// bounded queue and a few workers, with retries and backoff, each delivery signed with
// HMAC-SHA256 over a timestamp and the body.
package webhook

import (
	"slices"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/randid"
)

// Event types.
const (
	KeyCreated       = "key.created"
	KeyRevoked       = "key.revoked"
	KeyExpiring      = "key.expiring"
	KeyUsedFromNewIP = "key.used_from_new_ip"
	UserDisabled     = "user.disabled"
)

// Types lists every event type, in the order the documentation gives them.
var Types = []string{KeyCreated, KeyRevoked, KeyExpiring, KeyUsedFromNewIP, UserDisabled}

// Event is what a receiver gets as the JSON body of a delivery. It never holds a secret:
// no plaintext key, no hash, not even the key's start.
type Event struct {
	// ID is unique per event and the same on every retry of it ("evt_…"): receivers
	// drop duplicates by it.
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Data      Data      `json:"data"`
}

// Data is an event's subject.
type Data struct {
	Key  *Key  `json:"key,omitempty"`
	User *User `json:"user,omitempty"`
	// Actor is who acted: a user id, "key:<id>", "cli" or "bootstrap"; empty when the
	// gateway itself noticed (key.expiring, key.used_from_new_ip).
	Actor string `json:"actor,omitempty"`
	// ClientIP is where the call or the use came from, when there was one.
	ClientIP string `json:"client_ip,omitempty"`
}

// Key is an API key as events show it: its public fields only.
type Key struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	Environment string     `json:"environment"`
	Scopes      []string   `json:"scopes"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	ReplacedBy  string     `json:"replaced_by,omitempty"`
}

// User is a user as events show it.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// NewEvent returns an event of type typ at now with a fresh ID.
func NewEvent(typ string, now time.Time, d Data) Event {
	return Event{ID: randid.New("evt_", 20), Type: typ, CreatedAt: now.UTC(), Data: d}
}

// KeyOf is k as events show it.
func KeyOf(k apikey.Key) *Key {
	scopes := slices.Clone(k.Scopes)
	if scopes == nil {
		scopes = []string{}
	}
	return &Key{ID: k.ID, Name: k.Name, Type: k.Type, Environment: k.Environment, Scopes: scopes,
		CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC(), ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt,
		ReplacedBy: k.ReplacedBy}
}
