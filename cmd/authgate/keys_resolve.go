package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/apikey"
)

// resolveKey is the ID of the key arg names. A key ID is taken as it is (an ID always
// wins); anything else is an exact, case-sensitive name, looked up with the list's name
// filter (answered from the name index) among the keys the caller may list. One key of
// that name is the answer; of several, the only active one; otherwise the error lists the
// IDs to choose from.
func resolveKey(ctx context.Context, b keyBackend, cmd, arg string) (string, error) {
	if apikey.IsID(arg) {
		return arg, nil
	}
	q := url.Values{"name": {arg}, "limit": {strconv.Itoa(apikey.MaxLimit)}}
	var named []admin.KeyView
	for {
		body, err := b.list(ctx, q)
		if err != nil {
			return "", err
		}
		var p struct {
			Keys       []admin.KeyView `json:"keys"`
			NextCursor *string         `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return "", fmt.Errorf("keys %s: unexpected answer: %w", cmd, err)
		}
		named = append(named, p.Keys...)
		if p.NextCursor == nil || *p.NextCursor == "" {
			break
		}
		q.Set("cursor", *p.NextCursor)
	}
	if len(named) == 1 {
		return named[0].ID, nil
	}
	if len(named) == 0 {
		return "", &apiError{Status: http.StatusNotFound, Code: "not_found",
			Message: fmt.Sprintf("no key is named %q, and it is not a key ID (key_…); find it with authgate keys list --search", arg)}
	}
	var active []string
	choices := make([]string, len(named))
	for i, k := range named {
		choices[i] = k.ID + " (" + k.Status + ")"
		if k.Status == apikey.StatusActive {
			active = append(active, k.ID)
		}
	}
	if len(active) == 1 {
		return active[0], nil
	}
	return "", fmt.Errorf("keys %s: %d keys are named %q: %s; name one by its ID", cmd, len(named), arg, strings.Join(choices, ", "))
}
