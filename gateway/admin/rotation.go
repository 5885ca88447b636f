package admin

import (
	"net/http"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/httperr"
)

// Successor is the key rotation makes from old at now: the same settings, owner, minter
// and lineage, with a new ID and a fresh life. Shared with the CLI's direct mode.
func Successor(old apikey.Key, now time.Time) apikey.Key {
	nk := old
	nk.ID, nk.CreatedAt, nk.LastUsedAt, nk.RevokedAt = apikey.NewID(), now, nil, nil
	nk.Lineage = old.LineageID()
	nk.ReplacedBy, nk.HardExpiresAt = "", nil
	nk.ExpiresAt = Expiry(now, old.ExpiresInDays)
	return nk
}

// RotationEnd is the hard end revoke_old_after gives the old key: nil without a grace
// period (the old key stays as it is), else now + grace.
func RotationEnd(now time.Time, grace *time.Duration) *time.Time {
	if grace == nil {
		return nil
	}
	end := now.Add(*grace)
	return &end
}

// CheckRefresh refuses to refresh k at now: 400 invalid_request for a revoked key, 409
// key_rotated for a key that a rotation gave a hard end. Shared with the CLI's direct mode.
func CheckRefresh(k apikey.Key, now time.Time) error {
	if k.Status(now) == apikey.StatusRevoked {
		return badRequest("a revoked key cannot be refreshed", nil)
	}
	return CheckExtendable(k)
}

// CheckExtendable is 409 key_rotated for a key whose expiry a rotation fixed: its grace
// period ends when it ends, whatever its holder does. Shared with the CLI's direct mode.
func CheckExtendable(k apikey.Key) error {
	if k.HardExpiresAt == nil {
		return nil
	}
	return &httperr.Error{Status: http.StatusConflict, Code: "key_rotated",
		Msg: "the key was rotated (replaced by " + k.ReplacedBy + ") and ends at " +
			k.HardExpiresAt.UTC().Format(time.RFC3339) + "; its expiry cannot be extended: use the new key"}
}
