// Package randid makes random identifiers and secrets: base62 strings from crypto/rand,
// every character equally likely.
package randid

import (
	"crypto/rand"
	"strings"
)

// Alphabet is the base62 alphabet, in ASCII order.
const Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Append writes n random base62 characters to b: about 5.95 bits each.
func Append(b *strings.Builder, n int) {
	var buf [64]byte
	for n > 0 {
		_, _ = rand.Read(buf[:]) // never fails (crypto/rand, Go 1.24+)
		for _, c := range buf {
			if c >= 248 { // 248 = 4*62: reject so every character is equally likely
				continue
			}
			b.WriteByte(Alphabet[c%62])
			if n--; n == 0 {
				return
			}
		}
	}
}

// New returns prefix followed by n random base62 characters, e.g. New("key_", 20).
func New(prefix string, n int) string {
	var b strings.Builder
	b.Grow(len(prefix) + n)
	b.WriteString(prefix)
	Append(&b, n)
	return b.String()
}
