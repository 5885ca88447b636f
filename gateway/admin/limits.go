package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/httperr"
)

// CheckScopeCount refuses a key listing more than max scopes (api_keys.max_scopes_per_key)
// with 400 invalid_request; max <= 0 is no limit. Every scope travels in X-Auth-Scopes to
// the upstream and is matched on every request, so the count is bounded where keys are
// made and edited (issue 9, item 13). The length of each scope is bounded by
// KeyFields.Apply (128 bytes).
func CheckScopeCount(scopes []string, max int) error {
	if max > 0 && len(scopes) > max {
		return badRequest(fmt.Sprintf("scopes: %d scopes, at most %d per key (api_keys.max_scopes_per_key)", len(scopes), max), nil)
	}
	return nil
}

// checkScopeCount applies Options.MaxScopesPerKey to the scopes f sets, if any: a key
// stored before the limit can still be renamed; a new scope list is bounded.
func (a *API) checkScopeCount(f KeyFields) error {
	if a.o.MaxScopesPerKey == nil || f.Scopes == nil {
		return nil
	}
	return CheckScopeCount(*f.Scopes, a.o.MaxScopesPerKey())
}

// OwnerLimitError is the answer to a create refused by api_keys.max_keys_per_owner: 409
// conflict, since the request is well formed and succeeds once the owner revokes a key;
// nil when err is not such a refusal.
func OwnerLimitError(err error) *httperr.Error {
	var le *apikey.OwnerLimitError
	if !errors.As(err, &le) {
		return nil
	}
	return &httperr.Error{Status: http.StatusConflict, Code: "conflict", Err: err,
		Msg: fmt.Sprintf("the key's owner already holds %d active keys (api_keys.max_keys_per_owner); revoke one first", le.Max)}
}
