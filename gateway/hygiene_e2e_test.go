package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/porttest"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/webhook"
)

const whSecret = "whsec_test_secret_value"

// receiver is a loopback webhook receiver that records deliveries; answer decides each
// status (nil: 200).
type receiver struct {
	srv    *httptest.Server
	answer func(n int, ev webhook.Event) int

	mu         sync.Mutex
	deliveries []delivery
}

type delivery struct {
	header http.Header
	body   []byte
	event  webhook.Event
	status int
}

func startReceiver(tb testing.TB, answer func(n int, ev webhook.Event) int) *receiver {
	tb.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev webhook.Event
		_ = json.Unmarshal(body, &ev)
		rc.mu.Lock()
		n := len(rc.deliveries)
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(n, ev)
		}
		rc.deliveries = append(rc.deliveries, delivery{header: r.Header.Clone(), body: body, event: ev, status: status})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	tb.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.deliveries)
}

// ofType is the deliveries of events of type typ.
func (rc *receiver) ofType(typ string) []delivery {
	var out []delivery
	for _, d := range rc.got() {
		if d.event.Type == typ {
			out = append(out, d)
		}
	}
	return out
}

func webhookYAML(url string, events ...string) string {
	ev := ""
	if len(events) > 0 {
		ev = `, events: ["` + strings.Join(events, `", "`) + `"]`
	}
	return fmt.Sprintf(`notify:
  webhooks:
    - {url: "%s", secret: "%s"%s}
`, url, whSecret, ev)
}

// fastWebhooks are notifier options that retry within a test's patience.
var fastWebhooks = webhook.Options{Backoff: 20 * time.Millisecond, Timeout: 2 * time.Second, Attempts: 3}

// TestHygieneGaugeAndExpiringOnTwoReplicas: keys in every state (aged by writing their
// records back-dated, as the store's own clock cannot be moved in a served gateway) are
// counted in authgate_api_keys identically on two replicas sharing Redis; a revocation on
// one replica moves both gauges; key.expiring goes out once although both replicas find
// the key expiring on every refresh.
func TestHygieneGaugeAndExpiringOnTwoReplicas(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := startReceiver(t, nil)
	adminKey := newAdminKey(t)
	o := liveOpts{adminKey: adminKey, hygieneInterval: 50 * time.Millisecond, webhooks: fastWebhooks,
		extra: webhookYAML(rc.srv.URL, webhook.KeyExpiring)}
	a := serveLive(t, rs, o)
	b := serveLive(t, rs, o)

	now := time.Now()
	st := apikey.NewStore(rs.Client(t), redisPrefix, time.Now)
	put := func(name string, created time.Time, expires *time.Time) apikey.Key {
		plain, _ := apikey.Generate("sk", apikey.Live)
		k := apikey.Key{ID: apikey.NewID(), Name: name, Type: apikey.Personal, Environment: apikey.Live,
			CreatedBy: "usr_aged", CreatedAt: created, ExpiresAt: expires, Start: plain[:apikey.StartLen]}
		if err := st.Create(t.Context(), k, apikey.NewHasher("").Hash(plain)); err != nil {
			t.Fatal(err)
		}
		return k
	}
	ptr := func(t time.Time) *time.Time { return &t }
	old := put("old", now.Add(-100*24*time.Hour), nil)                                                  // stale, unused
	soon := put("soon", now.Add(-24*time.Hour), ptr(now.Add(2*24*time.Hour)))                           // expiring
	put("gone", now.Add(-40*24*time.Hour), ptr(now.Add(-24*time.Hour)))                                 // expired
	fresh := a.createKey(adminKey, map[string]any{"name": "fresh", "scopes": []string{"reports:read"}}) // active
	gone2 := a.createKey(adminKey, map[string]any{"name": "revoked", "scopes": []string{"reports:read"}})
	wantStatus(t, "revoke", b.call("DELETE", keysAPI+gone2.ID+"/", adminKey, nil), http.StatusOK)

	gauge := func(g *liveGW) map[string]float64 {
		out := map[string]float64{}
		for _, s := range []string{"active", "expiring", "stale", "unused", "expired"} {
			out[s] = metricValue(t, g.reg, "authgate_api_keys", map[string]string{"state": s})
		}
		return out
	}
	// bootstrap, old, soon, fresh are active; revoked keys count nowhere.
	want := map[string]float64{"active": 4, "expiring": 1, "stale": 1, "unused": 1, "expired": 1}
	for _, g := range []*liveGW{a, b} {
		waitFor(t, "the hygiene gauge", func() bool { return fmt.Sprint(gauge(g)) == fmt.Sprint(want) })
	}
	// The views and filters say the same.
	list := decodeJSON[struct{ Keys []admin.KeyView }](t, b.call("GET", keysAPI+"?stale=true&unused=true", adminKey, nil))
	if len(list.Keys) != 1 || list.Keys[0].ID != old.ID || !slices.Equal(list.Keys[0].Hygiene, []string{"stale", "unused"}) {
		t.Errorf("?stale=true&unused=true on B = %+v, want only old with [stale unused]", list.Keys)
	}
	if v := decodeJSON[admin.KeyView](t, a.call("GET", keysAPI+soon.ID+"/", adminKey, nil)); !slices.Equal(v.Hygiene, []string{"expiring"}) {
		t.Errorf("soon's hygiene = %v, want [expiring]", v.Hygiene)
	}
	if v := decodeJSON[admin.KeyView](t, a.call("GET", keysAPI+fresh.ID+"/", adminKey, nil)); !slices.Equal(v.Hygiene, []string{}) {
		t.Errorf("fresh's hygiene = %v, want []", v.Hygiene)
	}

	waitFor(t, "key.expiring", func() bool { return len(rc.ofType(webhook.KeyExpiring)) > 0 })
	// Revoking old through A moves both gauges: both replicas refreshed again since.
	wantStatus(t, "revoke old", a.call("DELETE", keysAPI+old.ID+"/", adminKey, nil), http.StatusOK)
	want = map[string]float64{"active": 3, "expiring": 1, "stale": 0, "unused": 0, "expired": 1}
	for _, g := range []*liveGW{a, b} {
		waitFor(t, "the gauge after a revocation", func() bool { return fmt.Sprint(gauge(g)) == fmt.Sprint(want) })
	}
	exp := rc.ofType(webhook.KeyExpiring)
	if len(exp) != 1 || exp[0].event.Data.Key == nil || exp[0].event.Data.Key.ID != soon.ID {
		var ids []string
		for _, d := range exp {
			ids = append(ids, d.event.Data.Key.ID)
		}
		t.Errorf("key.expiring deliveries for %v, want exactly one, for %s", ids, soon.ID)
	}
}

// TestWebhooksSignedRetriedAndComplete: every event type reaches a loopback receiver,
// signed (the receiver checks with webhook.Verify), without any secret in the body; a 500
// is retried with the same delivery id until it succeeds, counted as retried then
// delivered.
func TestWebhooksSignedRetriedAndComplete(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	first500 := map[string]bool{}
	var mu sync.Mutex
	rc := startReceiver(t, func(_ int, ev webhook.Event) int {
		mu.Lock()
		defer mu.Unlock()
		if ev.Type == webhook.KeyCreated && !first500[ev.ID] {
			first500[ev.ID] = true
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	deadURL := porttest.Reserve(t).URL() // connection refused, and no parallel test can serve there
	adminKey := newAdminKey(t)
	g := serveLive(t, rs, liveOpts{adminKey: adminKey, webhooks: fastWebhooks, hygieneInterval: 50 * time.Millisecond,
		extra: webhookYAML(rc.srv.URL) + fmt.Sprintf("    - {url: \"%s/dead\", secret: \"%s\"}\n", deadURL, whSecret)})

	k := g.createKey(adminKey, map[string]any{"name": "hooked", "scopes": []string{"reports:read"}, "expires_in_days": 30})
	wantStatus(t, "use", g.report(k.Secret), http.StatusOK) // first use from this IP
	wantStatus(t, "revoke", g.call("DELETE", keysAPI+k.ID+"/", adminKey, nil), http.StatusOK)
	u := decodeJSON[struct{ ID string }](t, g.call("POST", "/api/auth/users/", adminKey,
		map[string]any{"email": "hooked@example.com", "password": "a long enough password", "role": "member"}))
	wantStatus(t, "disable", g.call("PATCH", "/api/auth/users/"+u.ID+"/", adminKey, map[string]any{"disabled": true}), http.StatusOK)

	for _, typ := range []string{webhook.KeyCreated, webhook.KeyUsedFromNewIP, webhook.KeyRevoked, webhook.UserDisabled} {
		waitFor(t, typ, func() bool {
			for _, d := range rc.ofType(typ) {
				if d.status == http.StatusOK && (typ != webhook.KeyUsedFromNewIP || d.event.Data.Key.ID == k.ID) {
					return true
				}
			}
			return false
		})
	}
	created := rc.ofType(webhook.KeyCreated)
	if len(created) != 2 || created[0].status != 500 || created[1].status != 200 ||
		created[0].header.Get("Authgate-Delivery") != created[1].header.Get("Authgate-Delivery") || created[0].event.ID == "" {
		t.Errorf("key.created deliveries: want a 500 then a 200 retry with one delivery id; got %d", len(created))
	}
	for _, d := range rc.got() {
		if err := webhook.Verify(d.header.Get(webhook.SignatureHeader), []byte(whSecret), d.body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("%s: signature %q: %v", d.event.Type, d.header.Get(webhook.SignatureHeader), err)
		}
		if err := webhook.Verify(d.header.Get(webhook.SignatureHeader), []byte("another secret"), d.body, time.Now(), 5*time.Minute); err == nil {
			t.Errorf("%s: signature verifies with the wrong secret", d.event.Type)
		}
		tampered := append(slices.Clone(d.body[:len(d.body)-1]), ' ', '}')
		if err := webhook.Verify(d.header.Get(webhook.SignatureHeader), []byte(whSecret), tampered, time.Now(), 5*time.Minute); err == nil {
			t.Errorf("%s: signature verifies a changed body", d.event.Type)
		}
		if d.header.Get("Authgate-Event") != d.event.Type || d.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", d.event.Type, d.header)
		}
		body := string(d.body)
		if strings.Contains(body, k.Secret) || strings.Contains(body, k.Secret[:apikey.StartLen]) || strings.Contains(body, whSecret) ||
			strings.Contains(body, fmt.Sprintf("%x", apikey.NewHasher("").Hash(k.Secret))) {
			t.Errorf("%s: the body holds a secret: %s", d.event.Type, body)
		}
	}
	var newIP []string
	for _, d := range rc.ofType(webhook.KeyUsedFromNewIP) {
		if d.status == http.StatusOK {
			newIP = append(newIP, d.event.Data.Key.ID+" "+d.event.Data.Key.Name+" from "+d.event.Data.ClientIP)
		}
	}
	// The admin key's first use is one too.
	if !slices.Contains(newIP, k.ID+" hooked from 127.0.0.1") {
		t.Errorf("key.used_from_new_ip deliveries %v, want one for %s (hooked) from 127.0.0.1", newIP, k.ID)
	}
	if d := rc.ofType(webhook.UserDisabled); d[0].event.Data.User == nil || d[0].event.Data.User.ID != u.ID {
		t.Errorf("user.disabled = %+v", d[0].event.Data)
	}
	for result, min := range map[string]float64{"retried": 1, "delivered": 1} {
		if n := metricValue(t, g.reg, "authgate_webhook_deliveries_total", map[string]string{"event": webhook.KeyCreated, "result": result}); n < min {
			t.Errorf("authgate_webhook_deliveries_total{event=key.created,result=%s} = %v, want >= %v", result, n, min)
		}
	}
	if strings.Contains(g.logs.String(), whSecret) {
		t.Errorf("the webhook secret was logged")
	}
	// The dead receiver: every event fails there after its attempts, counted each time,
	// logged once for the burst.
	var failed float64
	waitFor(t, "four failed deliveries to the dead receiver", func() bool {
		failed = 0
		for _, typ := range []string{webhook.KeyCreated, webhook.KeyUsedFromNewIP, webhook.KeyRevoked, webhook.UserDisabled} {
			failed += metricValue(t, g.reg, "authgate_webhook_deliveries_total", map[string]string{"event": typ, "result": "failed"})
		}
		return failed >= 4
	})
	if n := strings.Count(g.logs.String(), "webhook deliveries failing"); n != 1 || !strings.Contains(g.logs.String(), deadURL+"/dead") {
		t.Errorf("%v failed deliveries logged %d times, want once, naming the receiver", failed, n)
	}
}

// TestWebhooksDeadReceiverNeverDelaysRequests: with a receiver that hangs every delivery
// and one that refuses connections, management calls that emit events complete while the
// receiver is blocked, deliveries beyond the queue are dropped and counted, the failure is
// logged once (not per attempt), and the p99 of a short bounded load is reported next to
// a run without webhooks (reported, not asserted: no wall-clock assertions in tests).
func TestWebhooksDeadReceiverNeverDelaysRequests(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var blockedMu sync.Mutex
	blocked := 0
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		blockedMu.Lock()
		blocked++
		blockedMu.Unlock()
		<-release
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	deadURL := porttest.Reserve(t).URL() // connection refused, and no parallel test can serve there

	rs := redistest.Start(t)
	adminKey := newAdminKey(t)
	extra := fmt.Sprintf(`notify:
  webhooks:
    - {url: "%s", secret: "%s"}
    - {url: "%s/hook?token=not-for-logs", secret: "%s"}
`, hang.URL, whSecret, deadURL, whSecret)
	env := map[string]string{"RL_MGMT": "100000", "RL_MGMT_IP": "100000"}
	with := serveLive(t, rs, liveOpts{adminKey: adminKey, extra: extra, env: env, hygieneInterval: time.Hour,
		webhooks: webhook.Options{Queue: 8, Workers: 2, Attempts: 3, Backoff: 10 * time.Millisecond, Timeout: time.Hour}})
	without := serveLive(t, redistest.Start(t), liveOpts{adminKey: adminKey, env: env, hygieneInterval: time.Hour})

	// Structural: the first call's event is being delivered to the hanging receiver, and
	// the next calls complete all the same.
	with.createKey(adminKey, map[string]any{"name": "first", "scopes": []string{"reports:read"}})
	waitFor(t, "the receiver to hang", func() bool { blockedMu.Lock(); defer blockedMu.Unlock(); return blocked > 0 })
	for i := range 20 {
		k := with.createKey(adminKey, map[string]any{"name": fmt.Sprintf("k%d", i), "scopes": []string{"reports:read"}})
		wantStatus(t, "revoke while the receiver hangs", with.call("DELETE", keysAPI+k.ID+"/", adminKey, nil), http.StatusOK)
	}
	blockedMu.Lock()
	stillBlocked := blocked > 0
	blockedMu.Unlock()
	if !stillBlocked {
		t.Fatal("premise: the receiver should still hold a delivery")
	}
	var dropped float64
	for _, typ := range []string{webhook.KeyCreated, webhook.KeyRevoked} {
		dropped += metricValue(t, with.reg, "authgate_webhook_deliveries_total", map[string]string{"event": typ, "result": "dropped"})
	}
	if dropped == 0 {
		t.Errorf("82 deliveries into a queue of 8 with hanging workers: none counted as dropped")
	}
	if n := strings.Count(with.logs.String(), "webhook queue full"); n != 1 {
		t.Errorf("queue-full log lines = %d, want 1 per burst", n)
	}
	if strings.Contains(with.logs.String(), "not-for-logs") || strings.Contains(with.logs.String(), whSecret) {
		t.Errorf("a receiver's query or the secret was logged")
	}

	// Short bounded load: the same calls against both gateways, interleaved so that the
	// machine's other load falls on both alike.
	one := func(g *liveGW, i int) time.Duration {
		start := time.Now()
		k := g.createKey(adminKey, map[string]any{"name": fmt.Sprintf("load%d", i), "scopes": []string{"reports:read"}})
		wantStatus(t, "use", g.report(k.Secret), http.StatusOK)
		return time.Since(start)
	}
	var latWith, latWithout []time.Duration
	for i := range 200 {
		latWithout = append(latWithout, one(without, i))
		latWith = append(latWith, one(with, i))
	}
	p99 := func(lat []time.Duration) time.Duration {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat[len(lat)*99/100]
	}
	p99Without, p99With := p99(latWithout), p99(latWith)
	t.Logf("create+use p99 over 200 calls each: without webhooks %s, with a hanging and a dead receiver %s", p99Without, p99With)
}
