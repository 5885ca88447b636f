//go:build faults

package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/Shopify/toxiproxy/v2/toxics"
)

// PubSubCutType is the toxic type name PubSubCut is registered under.
const PubSubCutType = "pubsub_cut"

func init() {
	toxics.Register(PubSubCutType, new(PubSubCut))
}

// PubSubCut is a stateful toxiproxy toxic that cuts only Redis pub/sub connections. Each
// link (one direction of one connection) is marked as pub/sub once a chunk carries the RESP
// bulk string "subscribe" (any case): the client's SUBSCRIBE command upstream, Redis's
// subscribe confirmation downstream. While Cut is true every chunk of a marked link is
// dropped and the connection is kept open (a pub/sub connection that silently delivers
// nothing); other links are forwarded untouched, so commands keep working. Install it on
// both streams before the first connection and toggle it with UpdateToxicJson, which keeps
// each link's state.
//
// The cut hits the pub/sub connections that exist when it is switched on, as a middlebox
// that silently drops one flow does: a pub/sub connection opened while it is on (a client
// that gave up on the dead one and reconnected) is a new flow and is forwarded. Cutting it
// too would drop its SUBSCRIBE for good, which no network does to a working flow.
type PubSubCut struct {
	cut   atomic.Bool
	epoch atomic.Int64 // incremented each time the cut is switched on
}

// pubSubCutAttrs are PubSubCut's JSON attributes.
type pubSubCutAttrs struct {
	Cut bool `json:"cut"`
}

// UnmarshalJSON sets Cut from {"cut": bool}; the running Pipes see the change at once.
func (t *PubSubCut) UnmarshalJSON(b []byte) error {
	var a pubSubCutAttrs
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("pubsub_cut attributes: %w", err)
	}
	if a.Cut && !t.cut.Load() {
		t.epoch.Add(1)
	}
	t.cut.Store(a.Cut)
	return nil
}

// MarshalJSON writes {"cut": bool}.
func (t *PubSubCut) MarshalJSON() ([]byte, error) {
	return json.Marshal(pubSubCutAttrs{Cut: t.cut.Load()})
}

// pubSubLink is the per-link state: whether the link has been seen to carry pub/sub, and
// the cut epoch it was first seen in (it is cut only by a later switch-on).
type pubSubLink struct {
	marked   bool
	markedAt int64
}

// NewState returns a link's state (unmarked).
func (t *PubSubCut) NewState() any { return new(pubSubLink) }

// subscribeBulk is the RESP bulk string "subscribe", lower-cased.
var subscribeBulk = []byte("$9\r\nsubscribe\r\n")

// carriesSubscribe reports whether data holds the RESP bulk string "subscribe", any case.
func carriesSubscribe(data []byte) bool {
	return bytes.Contains(bytes.ToLower(data), subscribeBulk)
}

// Pipe forwards chunks, dropping those of a pub/sub link while Cut is set.
func (t *PubSubCut) Pipe(stub *toxics.ToxicStub) {
	st, _ := stub.State.(*pubSubLink)
	if st == nil {
		st = new(pubSubLink)
		stub.State = st
	}
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if !st.marked && carriesSubscribe(c.Data) {
				st.marked, st.markedAt = true, t.epoch.Load()
			}
			if st.marked && t.cut.Load() && st.markedAt < t.epoch.Load() {
				continue // dropped, connection kept
			}
			stub.Output <- c
		}
	}
}
