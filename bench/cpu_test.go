package main

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{
			// Recorded from an authgate process after one second of wrk: utime 16, stime 13.
			name: "recorded",
			stat: "17960 (ag) S 17959 17949 9686 0 -1 4194304 2533 0 0 0 16 13 0 0 20 0 10 0 394022 1984692224 4931 18446744073709551615 4194304 9910624 140736137838976 0 0 0 1002060288 0 2143420159 0 0 0 17 1 0 0 0 0 0 16572416 16996704 173838336 140736137845237 140736137845273 140736137845273 140736137846768 0\n",
			want: 29,
		},
		{
			// comm may hold spaces and parentheses; fields count from the last ')'.
			name: "comm with spaces and parens",
			stat: "42 (a) b (c)) R 1 42 42 0 -1 4194304 10 0 0 0 1234 567 0 0 20 0 1 0 100 0 0\n",
			want: 1801,
		},
		{name: "empty", stat: "", wantErr: true},
		{name: "no comm", stat: "42 R 1 42 42 0 -1 4194304 10 0 0 0 1234 567", wantErr: true},
		{name: "truncated", stat: "42 (x) R 1 42 42 0 -1 4194304 10 0 0 0 1234", wantErr: true},
		{name: "not a number", stat: "42 (x) R 1 42 42 0 -1 4194304 10 0 0 0 12x4 567 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// TestProcCPU reads this test's own /proc entry: the path and units line up.
func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	d, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d < 0 {
		t.Errorf("got %s, want >= 0", d)
	}
}
