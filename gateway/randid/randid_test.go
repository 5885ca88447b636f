package randid

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 5000 {
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
	// 100,000 characters over 62 symbols: about 1,613 each (σ ≈ 40). Without rejection,
	// c%62 would draw the first 8 symbols about 1,950 times; the band is ±5σ.
	for _, c := range Alphabet {
		if n := counts[c]; n < 1413 || n > 1813 {
			t.Errorf("symbol %q drawn %d times, want about 1613", c, n)
		}
	}
}
