//go:build faults

package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// redisProxy is one toxiproxy proxy in front of Redis, with the pubsub_cut toxic installed
// (off) on both streams from the start, so that every link carries its state.
type redisProxy struct {
	t *testing.T
	p *toxiproxy.Proxy
}

// pubsubToxics are the names of the pubsub_cut toxic on each stream.
var pubsubToxics = []string{"pubsub_cut_up", "pubsub_cut_down"}

// newRedisProxy starts a proxy named name on a free loopback port forwarding to upstream.
// It is stopped when t ends.
func newRedisProxy(t *testing.T, name, upstream string) *redisProxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("toxiproxy %s: start: %v", name, err)
	}
	t.Cleanup(p.Stop)
	rp := &redisProxy{t: t, p: p}
	rp.add(fmt.Sprintf(`{"name":%q,"type":%q,"stream":"upstream","attributes":{"cut":false}}`, pubsubToxics[0], PubSubCutType))
	rp.add(fmt.Sprintf(`{"name":%q,"type":%q,"stream":"downstream","attributes":{"cut":false}}`, pubsubToxics[1], PubSubCutType))
	return rp
}

// Addr is where gateways dial instead of Redis; it stays the same across cut and restore.
func (rp *redisProxy) Addr() string { return rp.p.Listen }

// add installs a toxic from its JSON description.
func (rp *redisProxy) add(js string) {
	rp.t.Helper()
	if _, err := rp.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		rp.t.Fatalf("toxiproxy %s: add %s: %v", rp.p.Name, js, err)
	}
}

// remove removes the toxic called name.
func (rp *redisProxy) remove(name string) {
	rp.t.Helper()
	if err := rp.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		rp.t.Fatalf("toxiproxy %s: remove %s: %v", rp.p.Name, name, err)
	}
}

// cutPubSub turns the pub/sub-only cut on or off on both streams.
func (rp *redisProxy) cutPubSub(on bool) {
	rp.t.Helper()
	for _, name := range pubsubToxics {
		if _, err := rp.p.Toxics.UpdateToxicJson(name, strings.NewReader(fmt.Sprintf(`{"attributes":{"cut":%t}}`, on))); err != nil {
			rp.t.Fatalf("toxiproxy %s: update %s: %v", rp.p.Name, name, err)
		}
	}
}

// latency adds ms of latency to every chunk Redis sends.
func (rp *redisProxy) latency(ms int) {
	rp.add(fmt.Sprintf(`{"name":"latency","type":"latency","stream":"downstream","attributes":{"latency":%d}}`, ms))
}

// blackhole drops everything in both directions and keeps the connections (no RST);
// new connections are accepted and then swallowed too.
func (rp *redisProxy) blackhole() {
	rp.add(`{"name":"blackhole_up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)
	rp.add(`{"name":"blackhole_down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`)
}

// heal removes the blackhole (which closes the connections it held).
func (rp *redisProxy) heal() {
	rp.remove("blackhole_up")
	rp.remove("blackhole_down")
}

// cut closes the listener and every connection (clients see a reset or EOF, new dials
// are refused).
func (rp *redisProxy) cut() { rp.p.Stop() }

// restore listens again on the same address.
func (rp *redisProxy) restore() {
	rp.t.Helper()
	if err := rp.p.Start(); err != nil {
		rp.t.Fatalf("toxiproxy %s: restart on %s: %v", rp.p.Name, rp.p.Listen, err)
	}
}
