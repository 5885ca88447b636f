package auth

import (
	"context"
	"net/http"
	"net/netip"
	"slices"

	"github.com/authgate/authgate/gateway/apikey"

	"github.com/authgate/authgate/gateway/httperr"
)

// Principal is who a verified credential speaks for.
type Principal struct {
	Subject string // user id (JWT sub, or the key's owner)
	// Issuer is the iss of a token of a configured (external) issuer; "" for API keys and
	// the built-in issuer's tokens, whose Subject is one of the gateway's own users.
	Issuer string
	KeyID  string   // API key id; "" for JWTs
	Org    string   // organisation, when known
	Env    string   // "live" or "test"
	Scopes []string // effective scopes
	// AllowedIPs restricts where the credential may be used from; empty means anywhere.
	AllowedIPs []netip.Prefix
	// KeyType is "personal" or "admin" for API keys.
	KeyType string
	// RateLimit is the credential's own limit, when it has one.
	RateLimit *apikey.RateLimit
	// Teams are the teams the credential acts for: an API key's one team, a built-in
	// token's user's current teams, an external token's team claim. Ignored with AllTeams.
	Teams []string
	// AllTeams: the credential acts for every team (an admin key made for all teams, a
	// token whose scopes grant admin).
	AllTeams bool
}

// HoldsTeam reports whether the credential acts for team id.
func (p Principal) HoldsTeam(id string) bool {
	return p.AllTeams || slices.Contains(p.Teams, id)
}

// Refuser is the authenticator of a gateway that has no credential store of the given
// kind configured: it refuses every credential as invalid, so a protected route can never
// be reached by one it cannot verify.
type Refuser struct{}

// Authenticate refuses c with 401 invalid_api_key or invalid_token.
func (Refuser) Authenticate(_ context.Context, c Credential) (Principal, error) {
	code, desc := "invalid_token", "the bearer token is not valid"
	if c.Kind == APIKey {
		code, desc = "invalid_api_key", "the API key is not valid"
	}
	return Principal{}, &httperr.Error{Status: http.StatusUnauthorized, Code: code, Msg: desc,
		Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}}
}
