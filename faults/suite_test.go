//go:build faults

package faults

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// The faults, each run in every on_store_error and rate_limits.mode.
const (
	faultRestart      = "restart"
	faultRestartEmpty = "restart_empty"
	faultCutAll       = "cut_all"
	faultCutPubSub    = "cut_pubsub"
	faultLatencyBH    = "latency_blackhole"
)

var (
	faultNames    = []string{faultRestart, faultRestartEmpty, faultCutAll, faultCutPubSub, faultLatencyBH}
	storeErrModes = []string{"serve_cached", "fail_closed"}
	rateModes     = []string{"local", "redis"}
)

// Load and timing of every case.
const (
	loadClients  = 4
	loadPace     = 25 * time.Millisecond
	pollInterval = 50 * time.Millisecond
	baseline     = 5 * time.Second
	minAfter     = 7 * time.Second // after the fault ends
	// baselineWindow is the part of the baseline latencies are compared with: its end, once
	// connections and caches are warm.
	baselineWindow = 4 * time.Second
	minLoad        = 21 * time.Second // the load runs at least this long per case
	restartDown    = 5 * time.Second
	cutFor         = 8 * time.Second
	revokeAfter    = 3 * time.Second // into a cut
	latencyFor     = 6 * time.Second
	blackholeFor   = 6 * time.Second
	latencyMS      = 200
	// restoreWait bounds the wait, after Redis came back empty, for the bootstrap key to
	// work again on both replicas.
	restoreWait = 40 * time.Second

	// The product's promises this suite holds it to.
	detectBound  = time.Second
	recoverBound = 2 * time.Second
	// recoverWindow is how long service must hold to count as back.
	recoverWindow = time.Second
)

// Credential classes of the load.
const (
	classGood1   = "good1"
	classGood2   = "good2"
	classGood3   = "good3"
	classJWT     = "jwt"
	classAdmin   = "admin"   // the bootstrap admin key
	classUnknown = "unknown" // well formed, never stored
	classRevoked = "revoked" // revoked before the fault
	classVictim  = "victim"  // revoked during a cut
	classPublic  = "public"
)

var goodClasses = []string{classGood1, classGood2, classGood3, classJWT}

// defaultParallel is how many cases run at once unless FAULTS_PARALLEL says otherwise.
const defaultParallel = 2

// parallelism reads FAULTS_PARALLEL.
func parallelism(t *testing.T) int {
	v := os.Getenv("FAULTS_PARALLEL")
	if v == "" {
		return defaultParallel
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("FAULTS_PARALLEL=%q: want a positive integer", v)
	}
	return n
}

// TestFaults runs every fault in every mode, two gateway processes under load each, and
// writes the report (FAULTS_REPORT, else the test log).
func TestFaults(t *testing.T) {
	par := parallelism(t)
	if f := flag.Lookup("test.parallel"); f != nil {
		if n, err := strconv.Atoi(f.Value.String()); err == nil && n < par {
			par = n // go test's -parallel caps it
		}
	}
	slots := make(chan struct{}, par)
	rep := &report{parallel: par, started: time.Now(), loadBefore: loadAvg()}
	t.Cleanup(func() { rep.write(t) })
	for _, fault := range faultNames {
		for _, ose := range storeErrModes {
			for _, rm := range rateModes {
				c := faultCase{fault: fault, onStoreError: ose, rateMode: rm}
				t.Run(c.name(), func(t *testing.T) {
					t.Parallel()
					slots <- struct{}{}
					defer func() { <-slots }()
					rw := row{c: c, notes: []string{"did not complete: see the test log"}}
					defer func() { rw.failed = t.Failed(); rep.add(rw) }()
					rw = runCase(t, c)
				})
			}
		}
	}
}

// faultCase is one fault in one configuration.
type faultCase struct {
	fault        string
	onStoreError string
	rateMode     string
}

func (c faultCase) name() string { return c.fault + "/" + c.onStoreError + "/" + c.rateMode }

// unreachable reports whether the fault makes the store unreachable (as opposed to only the
// pub/sub connection).
func (c faultCase) unreachable() bool { return c.fault != faultCutPubSub }

// cut reports whether the fault revokes the victim key during it.
func (c faultCase) cut() bool { return c.fault == faultCutAll || c.fault == faultCutPubSub }

// timeline is what happened when in one case.
type timeline struct {
	loadStart  time.Time
	faultStart time.Time
	detectFrom time.Time // the start of the unreachable phase (the blackhole, for latency_blackhole)
	faultEnd   time.Time
	loadEnd    time.Time
	revokeAck  time.Time // the victim's revocation was acknowledged (cut faults)
	loginBack  []time.Duration
	loginErr   []string // the last failed admin login per replica
}

// topology is one case's processes.
type topology struct {
	redis    *redistest.Server
	proxies  []*redisProxy
	gateways []*gatewayProc
	up       *upstream
	cliCfg   string // config for the CLI's direct mode: Redis itself
	adminKey string
	victimID string
	creds    []credential
}

// setup starts Redis, the two proxies, the upstream and the two gateways, and makes the
// case's credentials.
func setup(t *testing.T, c faultCase) *topology {
	t.Helper()
	tp := &topology{redis: redistest.StartPersistent(t), up: newUpstream(t)}
	dir := t.TempDir()
	tp.adminKey = newKey(t)
	unknownKey := newKey(t)
	base := gatewayConfig{OnStoreError: c.onStoreError, RateMode: c.rateMode, Upstream: tp.up.hostPort(),
		SigningKey: filepath.Join(dir, "signing-key.pem"), AdminKey: tp.adminKey}
	for _, name := range []string{"A", "B"} {
		p := newRedisProxy(t, "redis-"+name, tp.redis.Addr())
		tp.proxies = append(tp.proxies, p)
		cfg := base
		cfg.RedisAddr = p.Addr()
		path := writeConfig(t, dir, "gateway-"+name+".yaml", cfg)
		// One after the other: the first creates the shared signing key and the admin.
		tp.gateways = append(tp.gateways, startGateway(t, name, path))
	}
	cli := base
	cli.RedisAddr = tp.redis.Addr()
	tp.cliCfg = writeConfig(t, dir, "cli.yaml", cli)

	a := tp.gateways[0].base + "/api/auth"
	admin := "Token " + tp.adminKey
	mustCall(t, http.StatusCreated, http.MethodPost, a+"/users/", admin,
		map[string]string{"email": userEmail, "password": userPassword, "role": "member"}, nil, http.StatusConflict)
	key := func(name string) (string, string) {
		var k struct{ ID, Key string }
		mustCall(t, http.StatusCreated, http.MethodPost, a+"/api-keys/", admin,
			map[string]any{"name": name, "scopes": []string{"load:read"}}, &k)
		return k.ID, k.Key
	}
	tp.creds = []credential{{class: classPublic, path: "/public/"}}
	for _, cl := range []string{classGood1, classGood2, classGood3} {
		_, k := key(cl)
		tp.creds = append(tp.creds, credential{class: cl, path: "/keyed/", auth: "Token " + k})
	}
	revokedID, revokedKey := key(classRevoked)
	mustCall(t, http.StatusOK, http.MethodDelete, a+"/api-keys/"+revokedID+"/", admin, nil, nil, http.StatusNotFound, http.StatusConflict)
	tp.creds = append(tp.creds,
		credential{class: classRevoked, path: "/keyed/", auth: "Token " + revokedKey},
		credential{class: classUnknown, path: "/keyed/", auth: "Token " + unknownKey},
		credential{class: classAdmin, path: "/keyed/", auth: admin})
	if c.cut() {
		var vk string
		tp.victimID, vk = key(classVictim)
		tp.creds = append(tp.creds, credential{class: classVictim, path: "/keyed/", auth: "Token " + vk})
	}
	tok := mustLogin(t, tp.gateways[0].base, userEmail, userPassword)
	tp.creds = append(tp.creds, credential{class: classJWT, path: "/jwt/", auth: "Bearer " + tok})

	// Every credential answers as it should on both replicas before the fault (and the
	// good ones are cached there).
	for _, g := range tp.gateways {
		for _, cr := range tp.creds {
			want := http.StatusOK
			if cr.class == classRevoked || cr.class == classUnknown {
				want = http.StatusUnauthorized
			}
			deadline := time.Now().Add(setupBound)
			for {
				code, b := call(http.MethodGet, g.base+cr.path, cr.auth, nil)
				if code == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("setup: %s on %s: got %d %s, want %d", cr.class, g.name, code, b, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	return tp
}

// runCase runs one case and returns its report row; assertions fail t.
func runCase(t *testing.T, c faultCase) row {
	tp := setup(t, c)
	var tl timeline

	bases := []string{tp.gateways[0].base, tp.gateways[1].base}
	ops := []string{tp.gateways[0].ops, tp.gateways[1].ops}
	lg := newLoadGen(bases, tp.creds)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	pollWG, samples := pollMetrics(ctx, ops, pollInterval)
	tl.loadStart = time.Now()
	loadWG := lg.run(ctx, loadClients, loadPace)

	time.Sleep(baseline)
	inject(t, c, tp, &tl)

	after := max(minAfter, time.Until(tl.loadStart.Add(minLoad)))
	if c.fault == faultRestartEmpty {
		tl.loginBack, tl.loginErr = awaitRestore(lg, tp, tl.faultEnd)
	}
	if left := time.Until(tl.faultEnd.Add(after)); left > 0 {
		time.Sleep(left)
	}
	stop()
	tl.loadEnd = time.Now()
	loadWG.Wait()
	pollWG.Wait()

	return analyse(t, c, tp, tl, lg.snapshot(), samples())
}

// inject runs the fault and records its times.
func inject(t *testing.T, c faultCase, tp *topology, tl *timeline) {
	t.Helper()
	tl.faultStart = time.Now()
	tl.detectFrom = tl.faultStart
	switch c.fault {
	case faultRestart, faultRestartEmpty:
		tp.redis.Kill(t)
		time.Sleep(restartDown)
		if c.fault == faultRestartEmpty {
			tp.redis.Wipe(t)
		}
		tp.redis.Restart(t)
	case faultCutAll:
		for _, p := range tp.proxies {
			p.cut()
		}
		time.Sleep(revokeAfter)
		runCLI(t, "keys", "revoke", "--config", tp.cliCfg, tp.victimID)
		tl.revokeAck = time.Now()
		time.Sleep(time.Until(tl.faultStart.Add(cutFor)))
		for _, p := range tp.proxies {
			p.restore()
		}
	case faultCutPubSub:
		for _, p := range tp.proxies {
			p.cutPubSub(true)
		}
		time.Sleep(revokeAfter)
		mustCall(t, http.StatusOK, http.MethodDelete, tp.gateways[0].base+"/api/auth/api-keys/"+tp.victimID+"/", "Token "+tp.adminKey, nil, nil, http.StatusNotFound, http.StatusConflict)
		tl.revokeAck = time.Now()
		time.Sleep(time.Until(tl.faultStart.Add(cutFor)))
		for _, p := range tp.proxies {
			p.cutPubSub(false)
		}
	case faultLatencyBH:
		for _, p := range tp.proxies {
			p.latency(latencyMS)
		}
		time.Sleep(latencyFor)
		tl.detectFrom = time.Now()
		for _, p := range tp.proxies {
			p.remove("latency")
			p.blackhole()
		}
		time.Sleep(blackholeFor)
		for _, p := range tp.proxies {
			p.heal()
		}
	default:
		t.Fatalf("unknown fault %q", c.fault)
	}
	tl.faultEnd = time.Now()
}

// awaitRestore waits (at most restoreWait) until the bootstrap admin key has answered 200
// on each replica after Redis came back empty, then until the bootstrap admin can sign in
// there; it returns, per replica, how long after the restart the login worked (-1: never).
func awaitRestore(lg *loadGen, tp *topology, since time.Time) ([]time.Duration, []string) {
	back := make([]time.Duration, len(tp.gateways))
	lastErr := make([]string, len(tp.gateways))
	deadline := since.Add(restoreWait)
	var wg sync.WaitGroup
	for rep, g := range tp.gateways {
		back[rep] = -1
		wg.Go(func() {
			for time.Now().Before(deadline) && !adminOKSince(lg.snapshot(), rep, since) {
				time.Sleep(100 * time.Millisecond)
			}
			for time.Now().Before(deadline) {
				_, _, err := login(g.base, adminEmail, adminPassword)
				if err == nil {
					back[rep] = time.Since(since)
					return
				}
				lastErr[rep] = err.Error()
				time.Sleep(250 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return back, lastErr
}

// adminOKSince reports whether the bootstrap key got a 200 on replica rep, sent after since.
func adminOKSince(rs []result, rep int, since time.Time) bool {
	for _, r := range rs {
		if r.class == classAdmin && r.replica == rep && r.ok() && r.sent.After(since) {
			return true
		}
	}
	return false
}

// row is one line of the report.
type row struct {
	c             faultCase
	requests      int
	good5xx       int
	badThrough    int
	victimServed  int // served from cache during the outage (reported, not a failure)
	victimLate    int // reached the upstream when it must not have
	publicFail    int
	addP50        time.Duration
	addP99        time.Duration
	detect        time.Duration // -1: never seen
	recover       time.Duration // -1: never
	lostServed    int           // restart_empty: lost credentials served after the recovery bound
	loginBack     []time.Duration
	notes         []string
	failed        bool
	trustedAbsent bool
}

// analyse computes the case's figures and asserts the promises.
func analyse(t *testing.T, c faultCase, tp *topology, tl timeline, rs []result, ss []sample) row {
	rw := row{c: c, requests: len(rs), loginBack: tl.loginBack}
	fail := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		t.Error(msg)
		rw.notes = append(rw.notes, msg)
	}
	isGood := func(cl string) bool { return slices.Contains(goodClasses, cl) }

	// Good credentials: 5xx (or no answer).
	// After Redis came back empty they are no longer good: only the requests sent before
	// count (afterwards a 503 while the store is down is the answer for an unknown key).
	var goodFailed []result
	for _, r := range rs {
		if isGood(r.class) && r.failed() && (c.fault != faultRestartEmpty || r.sent.Before(tl.faultEnd)) {
			goodFailed = append(goodFailed, r)
		}
	}
	rw.good5xx = len(goodFailed)
	if rw.good5xx > 0 && (c.onStoreError == "serve_cached" || c.fault == faultCutPubSub) {
		fail("GOOD_5XX: %d requests with a good credential got a 5xx or no answer (first: %s)", rw.good5xx, describe(goodFailed[0], tl))
	}

	// Unknown and pre-revoked keys never reach the upstream.
	var through []result
	for _, r := range rs {
		if (r.class == classUnknown || r.class == classRevoked) && (r.ok() || tp.up.reached(r.id)) {
			through = append(through, r)
		}
	}
	rw.badThrough = len(through)
	if rw.badThrough > 0 {
		fail("BAD_KEY_THROUGH: %d requests with an unknown or revoked key reached the upstream (first: %s)", rw.badThrough, describe(through[0], tl))
	}

	// Data loss: the lost keys and the lost user's token are refused once service is back.
	if c.fault == faultRestartEmpty {
		statuses := map[int]int{}
		var served []result
		for _, r := range rs {
			if !isGood(r.class) || r.sent.Before(tl.faultEnd.Add(recoverBound)) {
				continue
			}
			statuses[r.status]++
			if r.ok() || tp.up.reached(r.id) {
				served = append(served, r)
			}
		}
		rw.notes = append(rw.notes, fmt.Sprintf("after the data loss (from %s after the restart) the lost keys and token got: %s", recoverBound, fmtStatuses(statuses)))
		rw.lostServed = len(served)
		if len(served) > 0 {
			fail("LOST_CREDENTIAL_SERVED: %d requests with a key or token lost with the data reached the upstream %s or more after Redis came back empty (first: %s)", len(served), recoverBound, describe(served[0], tl))
		}
	}

	// The victim.
	upAgain := make([]time.Time, len(tp.gateways))
	for rep := range upAgain {
		upAgain[rep] = firstAfter(ss, rep, tl.faultEnd, func(s sample) bool { return s.up == 1 })
	}
	if c.cut() {
		var late []result
		for _, r := range rs {
			if r.class != classVictim || r.sent.Before(tl.revokeAck) || !(r.ok() || tp.up.reached(r.id)) {
				continue
			}
			if c.fault == faultCutAll && (upAgain[r.replica].IsZero() || r.sent.Before(upAgain[r.replica])) {
				rw.victimServed++
				continue
			}
			late = append(late, r)
		}
		rw.victimLate = len(late)
		if rw.victimLate > 0 {
			when := "after its revocation was acknowledged"
			if c.fault == faultCutAll {
				when = "after the replica reported authgate_store_up 1 again"
			}
			fail("REVOKED_KEY_SERVED: %d requests with the key revoked during the cut reached the upstream %s (first: %s)", rw.victimLate, when, describe(late[0], tl))
		}
	}

	// The public route.
	for _, r := range rs {
		if r.class == classPublic && r.failed() {
			rw.publicFail++
		}
	}
	if rw.publicFail > 0 {
		fail("PUBLIC_5XX: %d requests on the public route got a 5xx or no answer", rw.publicFail)
	}

	// Added latency of good credentials during the fault.
	var base, during []time.Duration
	for _, r := range rs {
		if !isGood(r.class) || r.sent.Before(tl.faultStart.Add(-baselineWindow)) {
			continue
		}
		switch {
		case r.sent.Before(tl.faultStart):
			base = append(base, r.latency)
		case r.sent.Before(tl.faultEnd):
			during = append(during, r.latency)
		}
	}
	rw.addP50 = percentile(during, 50) - percentile(base, 50)
	rw.addP99 = percentile(during, 99) - percentile(base, 99)

	if c.fault == faultLatencyBH {
		// The latency phase is reported, not asserted: how the store looked and what it cost.
		var lat, hole []time.Duration
		for _, r := range rs {
			switch {
			case !isGood(r.class) || r.sent.Before(tl.faultStart) || !r.sent.Before(tl.faultEnd):
			case r.sent.Before(tl.detectFrom):
				lat = append(lat, r.latency)
			default:
				hole = append(hole, r.latency)
			}
		}
		down := "stayed 1"
		var worst time.Duration = -1
		for rep := range tp.gateways {
			at := firstAfter(ss, rep, tl.faultStart, func(s sample) bool { return s.up == 0 })
			if !at.IsZero() && at.Before(tl.detectFrom) {
				worst = max(worst, at.Sub(tl.faultStart))
			}
		}
		if worst >= 0 {
			down = "went 0 (after " + fmtDur(worst) + " at most)"
		}
		rw.notes = append(rw.notes, fmt.Sprintf("latency phase (%d ms): authgate_store_up %s; good-credential p50/p99 %s/%s (latency phase), %s/%s (blackhole phase), baseline %s/%s",
			latencyMS, down, fmtDur(percentile(lat, 50)), fmtDur(percentile(lat, 99)), fmtDur(percentile(hole, 50)), fmtDur(percentile(hole, 99)),
			fmtDur(percentile(base, 50)), fmtDur(percentile(base, 99))))
	}

	// Detection: the first scrape after the fault that shows it, slowest replica.
	detected := func(s sample) bool { return s.up == 0 }
	if c.fault == faultCutPubSub {
		detected = func(s sample) bool { return s.trusted == 0 }
		rw.trustedAbsent = !slices.ContainsFunc(ss, func(s sample) bool { return s.trusted >= 0 })
	}
	for rep := range tp.gateways {
		at := firstAfter(ss, rep, tl.detectFrom, detected)
		if at.IsZero() {
			rw.detect = -1
			break
		}
		rw.detect = max(rw.detect, at.Sub(tl.detectFrom))
	}
	if c.unreachable() {
		if rw.detect < 0 || rw.detect > detectBound {
			fail("DETECTION: the outage was known (authgate_store_up 0) after %s on the slowest replica, want <= %s", fmtDur(rw.detect), detectBound)
		}
	}

	// Recovery: fault end until full service: the first scrape from which the store is up
	// (for cut_pubsub: the key cache trusted too) and every answer to a good credential (for
	// restart_empty: to the bootstrap admin key) is a 2xx for recoverWindow; slowest replica.
	// Blips after that (a store that flaps on a starved machine) are reported apart.
	recClasses := goodClasses
	if c.fault == faultRestartEmpty {
		recClasses = []string{classAdmin}
	}
	healthy := func(s sample) bool { return s.up == 1 && (c.fault != faultCutPubSub || s.trusted != 0) }
	for rep, g := range tp.gateways {
		var mine []sample
		for _, s := range ss {
			if s.replica == rep && s.ok && !s.at.Before(tl.faultEnd) {
				mine = append(mine, s)
			}
		}
		var bad []result
		for _, r := range rs {
			if r.replica == rep && slices.Contains(recClasses, r.class) && !r.sent.Before(tl.faultEnd) && !r.ok() {
				bad = append(bad, r)
			}
		}
		at := recoveredAt(mine, bad, healthy)
		if at.IsZero() {
			rw.recover = -1
			break
		}
		rw.recover = max(rw.recover, at.Sub(tl.faultEnd))
		later := at.Add(recoverWindow)
		polls, answers := 0, 0
		for _, s := range mine {
			if s.at.After(later) && !healthy(s) {
				polls++
			}
		}
		for _, r := range bad {
			if r.sent.After(later) {
				answers++
			}
		}
		if polls > 0 || answers > 0 {
			rw.notes = append(rw.notes, fmt.Sprintf("replica %s blipped after recovering: %d scrapes not healthy, %d non-2xx answers to %s (see \"store unreachable\" in its log)",
				g.name, polls, answers, strings.Join(recClasses, "/")))
		}
	}
	if rw.recover < 0 || rw.recover > recoverBound {
		fail("RECOVERY: full service came back %s after the fault ended on the slowest replica, want <= %s", fmtDur(rw.recover), recoverBound)
	}

	// Metrics.
	for rep, g := range tp.gateways {
		var last sample
		for _, s := range ss {
			if s.replica == rep && s.ok {
				last = s
			}
		}
		if last.up != 1 {
			fail("METRICS: replica %s ends with authgate_store_up %v, want 1", g.name, last.up)
		}
		if last.fallback != 0 {
			fail("METRICS: replica %s ends with authgate_rate_limit_fallback %v, want 0", g.name, last.fallback)
		}
		fellBack := slices.ContainsFunc(ss, func(s sample) bool {
			return s.replica == rep && s.fallback == 1 && !s.at.Before(tl.detectFrom) && !s.at.After(tl.faultEnd)
		})
		switch {
		case c.rateMode == "local" && slices.ContainsFunc(ss, func(s sample) bool { return s.replica == rep && s.fallback != 0 }):
			fail("METRICS: replica %s showed authgate_rate_limit_fallback 1 in rate_limits.mode local", g.name)
		case c.rateMode == "redis" && c.unreachable() && !fellBack && c.onStoreError == "serve_cached":
			fail("METRICS: replica %s never showed authgate_rate_limit_fallback 1 while Redis was unreachable (mode redis)", g.name)
		case c.rateMode == "redis" && c.unreachable() && !fellBack:
			// fail_closed refuses credentials before any limit is counted, and the fallback
			// switches on at a failed limiter call: nothing may switch it on.
			rw.notes = append(rw.notes, fmt.Sprintf("replica %s: authgate_rate_limit_fallback stayed 0 during the outage (fail_closed: no request reached the limiter)", g.name))
		}
	}

	// Both processes alive, no panic.
	for _, g := range tp.gateways {
		if !g.alive() {
			fail("ALIVE: gateway %s exited: %v", g.name, g.err)
		}
		if l := g.panicked(); l != "" {
			fail("PANIC: gateway %s: %s", g.name, l)
		}
	}
	if c.fault == faultRestartEmpty {
		for rep, d := range tl.loginBack {
			if d < 0 {
				fail("RESTORE: the bootstrap admin could not sign in on %s within %s of Redis coming back empty (last answer: %s)", tp.gateways[rep].name, restoreWait, tl.loginErr[rep])
			}
		}
	}
	if t.Failed() {
		for _, g := range tp.gateways {
			t.Logf("gateway %s log:\n%s\nstderr:\n%s", g.name, tail(g.stdout.String(), 60), tail(g.stderr.String(), 20))
		}
	}
	t.Logf("%s: %d requests, good 5xx %d, bad through %d, victim served during outage %d, added p50/p99 %s/%s, detection %s, recovery %s",
		c.name(), rw.requests, rw.good5xx, rw.badThrough, rw.victimServed, fmtDur(rw.addP50), fmtDur(rw.addP99), fmtDur(rw.detect), fmtDur(rw.recover))
	return rw
}

// firstAfter is the time of the first ok scrape of replica rep at or after from that
// satisfies cond; zero if none.
func firstAfter(ss []sample, rep int, from time.Time, cond func(sample) bool) time.Time {
	for _, s := range ss {
		if s.replica == rep && s.ok && !s.at.Before(from) && cond(s) {
			return s.at
		}
	}
	return time.Time{}
}

// recoveredAt is the time of the first scrape in ss (one replica's, in time order) from
// which, for recoverWindow, every scrape is healthy and no request in bad is answered;
// zero if there is none (the window must end before the last scrape).
func recoveredAt(ss []sample, bad []result, healthy func(sample) bool) time.Time {
	if len(ss) == 0 {
		return time.Time{}
	}
	last := ss[len(ss)-1].at
next:
	for i, s := range ss {
		end := s.at.Add(recoverWindow)
		if end.After(last) {
			break
		}
		for _, w := range ss[i:] {
			if w.at.After(end) {
				break
			}
			if !healthy(w) {
				continue next
			}
		}
		for _, r := range bad {
			if !r.done().Before(s.at) && !r.sent.After(end) {
				continue next
			}
		}
		return s.at
	}
	return time.Time{}
}

// percentile is the p-th percentile (nearest rank) of ds; 0 for none.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// describe names a request for a failure message.
func describe(r result, tl timeline) string {
	return fmt.Sprintf("%s on replica %s, sent %s after the fault began, status %d, %s",
		r.class, string(rune('A'+r.replica)), fmtDur(r.sent.Sub(tl.faultStart)), r.status, fmtDur(r.latency))
}

// fmtDur prints a duration in milliseconds; "never" for a negative one.
func fmtDur(d time.Duration) string {
	if d == -1 {
		return "never"
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// loadAvg is the 1-minute load average, "?" where it cannot be read.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// fmtSigned prints a duration difference in milliseconds with its sign.
func fmtSigned(d time.Duration) string {
	return fmt.Sprintf("%+dms", d.Milliseconds())
}

// fmtStatuses prints a status count map in status order, "0" meaning no answer.
func fmtStatuses(m map[int]int) string {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d×%d", m[k], k))
	}
	if len(parts) == 0 {
		return "none sent"
	}
	return strings.Join(parts, ", ")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// report collects the rows of every case.
type report struct {
	parallel   int
	started    time.Time
	loadBefore string
	mu         sync.Mutex
	rows       []row
}

func (r *report) add(rw row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, rw)
}

// write renders the report into FAULTS_REPORT, or the test log without it.
func (r *report) write(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	order := func(c faultCase) int {
		return slices.Index(faultNames, c.fault)*4 + slices.Index(storeErrModes, c.onStoreError)*2 + slices.Index(rateModes, c.rateMode)
	}
	slices.SortFunc(r.rows, func(a, b row) int { return order(a.c) - order(b.c) })
	var b strings.Builder
	fmt.Fprintf(&b, "## Fault suite results\n\n")
	fmt.Fprintf(&b, "Command: `make test-faults` (`go test -tags faults -count=1 -timeout 20m -parallel %[1]d -v ./faults/`), FAULTS_PARALLEL=%[1]d (cases at once), %[2]s, wall time %[3]s, %[4]d CPUs, load average %[5]s before and %[6]s after.\n",
		r.parallel, time.Now().UTC().Format("2006-01-02 15:04 UTC"), time.Since(r.started).Round(time.Second), runtime.NumCPU(), r.loadBefore, loadAvg())
	fmt.Fprintf(&b, "Each case: two gateway processes, each reaching one redis-server through its own toxiproxy proxy; %d clients, one request per %s each, over both replicas and every credential; %s baseline, the fault, then at least %s.\n",
		loadClients, loadPace, baseline, minAfter)
	fmt.Fprintf(&b, "Good credentials: three API keys and a token. Added p50/p99: good-credential latency during the fault minus the last %s before it. Detection: fault start (for latency_blackhole: blackhole start) to the first scrape showing authgate_store_up 0 (cut_pubsub: authgate_credential_cache_trusted 0), slowest replica. Recovery: fault end to the first scrape from which, for %s, the store is up (and the cache trusted) and every good credential (restart_empty: the bootstrap admin key) gets a 2xx, slowest replica.\n\n",
		baselineWindow, recoverWindow)
	b.WriteString("| fault | on_store_error | rate_limits.mode | requests | good 5xx | bad let through | victim served during outage | added p50/p99 | detection | recovery |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rw := range r.rows {
		victim := "—"
		if rw.c.cut() {
			victim = strconv.Itoa(rw.victimServed)
			if rw.victimLate > 0 {
				victim += fmt.Sprintf(" (+%d AFTER recovery/revoke)", rw.victimLate)
			}
		}
		bad := strconv.Itoa(rw.badThrough)
		if rw.lostServed > 0 {
			bad += fmt.Sprintf(" (+%d lost credentials)", rw.lostServed)
		}
		detect := fmtDur(rw.detect)
		if rw.c.fault == faultCutPubSub {
			detect += " (cache untrusted)"
			if rw.trustedAbsent {
				detect = "n/a (no trust gauge)"
			}
		}
		status := ""
		if rw.failed {
			status = " **FAIL**"
		}
		fmt.Fprintf(&b, "| %s%s | %s | %s | %d | %d | %s | %s | %s / %s | %s | %s |\n",
			rw.c.fault, status, rw.c.onStoreError, rw.c.rateMode, rw.requests, rw.good5xx, bad,
			victim, fmtSigned(rw.addP50), fmtSigned(rw.addP99), detect, fmtDur(rw.recover))
	}
	var notes []string
	for _, rw := range r.rows {
		if rw.c.fault == faultRestartEmpty {
			var ds []string
			for _, d := range rw.loginBack {
				ds = append(ds, fmtDur(d))
			}
			notes = append(notes, fmt.Sprintf("- %s: the bootstrap admin could sign in again %s after Redis came back empty (per replica).", rw.c.name(), strings.Join(ds, ", ")))
		}
		for _, n := range rw.notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", rw.c.name(), n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	out := b.String()
	if path := os.Getenv("FAULTS_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Errorf("write FAULTS_REPORT: %v", err)
		}
	}
	t.Log("\n" + out)
}
