package randid

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		id := New("x_", 20)
		if len(id) != 22 || !strings.HasPrefix(id, "x_") {
			t.Fatalf("New = %q", id)
		}
		if seen[id] {
			t.Fatalf("repeated id %q", id)
		}
		seen[id] = true
		for _, c := range id[2:] {
			if !strings.ContainsRune(Alphabet, c) {
				t.Fatalf("%q has %q outside base62", id, c)
			}
			counts[c]++
		}
	}
	// 40,000 characters over 62 symbols: about 645 each. A biased generator (e.g. c%62
	// without rejection favours the first 8 symbols by ~25%) falls outside this band.
	for _, c := range Alphabet {
		if n := counts[c]; n < 500 || n > 800 {
			t.Errorf("symbol %q drawn %d times, want about 645", c, n)
		}
	}
}
