package admin

import (
	"net/http"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/gateway/webhook"
)

// Event is a life-cycle event for Options.Notify.
type Event = webhook.Event

// Event types the API emits.
const (
	EventKeyCreated   = webhook.KeyCreated
	EventKeyRevoked   = webhook.KeyRevoked
	EventUserDisabled = webhook.UserDisabled
)

// notifyKey tells Options.Notify that c did typ to k.
func (a *API) notifyKey(r *http.Request, typ string, k apikey.Key, c caller) {
	if a.o.Notify == nil {
		return
	}
	a.o.Notify(r.Context(), webhook.NewEvent(typ, a.o.Now(), webhook.Data{Key: webhook.KeyOf(k),
		Actor: actorOf(c), ClientIP: clientIP(r)}))
}

// notifyUser tells Options.Notify that c did typ to u.
func (a *API) notifyUser(r *http.Request, typ string, u user.User, c caller) {
	if a.o.Notify == nil {
		return
	}
	a.o.Notify(r.Context(), webhook.NewEvent(typ, a.o.Now(), webhook.Data{User: &webhook.User{ID: u.ID, Email: u.Email},
		Actor: actorOf(c), ClientIP: clientIP(r)}))
}

// actorOf is who c is in the audit log and in events.
func actorOf(c caller) string {
	if c.subject == "" && c.keyID != "" {
		return "key:" + c.keyID
	}
	return c.subject
}
