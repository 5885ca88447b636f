package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestReportRefs: a row with a ref is compared with that row when it ran, and not at all
// when it was left out of the run.
func TestReportRefs(t *testing.T) {
	o := options{rounds: 1, duration: 5 * time.Second}
	rr := func(rps, cpu float64) []roundResult {
		return []roundResult{{Round: 1, Requests: int64(rps * 5), RPS: rps, CPUPerReq: cpu}}
	}
	targets := []target{
		{scenario: scenario{name: baseline}},
		{scenario: scenario{name: "authgate-apikey"}},
		{scenario: scenario{name: "authgate-jwt-hs256", ref: "authgate-apikey"}},
		{scenario: scenario{name: "orphan", ref: "not-run"}},
	}
	rep := newReport(o, "test", targets, [][]roundResult{rr(10000, 100), rr(12000, 60), rr(11400, 63), rr(1, 1)})

	jwtRow, orphan := rep.Rows[2], rep.Rows[3]
	if jwtRow.Ref != "authgate-apikey" || jwtRow.ThroughputVsRef != 0.95 || jwtRow.CPUVsRef != 1.05 {
		t.Errorf("jwt row: ref %q, throughput %v, CPU %v; want authgate-apikey, 0.95, 1.05",
			jwtRow.Ref, jwtRow.ThroughputVsRef, jwtRow.CPUVsRef)
	}
	if orphan.Ref != "" || orphan.ThroughputVsRef != 0 || orphan.CPUVsRef != 0 {
		t.Errorf("row whose ref did not run: %+v, want no comparison", orphan)
	}
	if rep.Rows[1].Ref != "" || rep.Rows[1].ThroughputVsRef != 0 {
		t.Errorf("row without ref: %+v, want no comparison", rep.Rows[1])
	}

	var out bytes.Buffer
	rep.print(&out)
	line := "authgate-jwt-hs256  authgate-apikey            0.950x       1.050x"
	if !strings.Contains(out.String(), line) {
		t.Errorf("printed report lacks %q:\n%s", line, out.String())
	}
	if strings.Contains(out.String(), "not-run") {
		t.Errorf("printed report compares with a row that did not run:\n%s", out.String())
	}
}
