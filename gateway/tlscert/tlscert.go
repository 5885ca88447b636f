// Package tlscert holds the main listener's certificate and key pair and swaps in a new
// one when asked to reload it, so certificates rotated in place (cert-manager, certbot) are
// served without a restart.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Pair is a certificate and key loaded from two PEM files. Handshakes read the current
// pair through GetCertificate; Reload replaces it only when the new files load. It is
// safe for concurrent use.
type Pair struct {
	certFile, keyFile string
	mu                sync.Mutex // serialises Reload
	cur               atomic.Pointer[tls.Certificate]
}

// Load reads certFile and keyFile, which must hold a matching PEM certificate (chain) and
// private key.
func Load(certFile, keyFile string) (*Pair, error) {
	p := &Pair{certFile: certFile, keyFile: keyFile}
	c, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	p.cur.Store(c)
	return p, nil
}

func load(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlscert: load %s and %s: %w", certFile, keyFile, err)
	}
	if c.Leaf == nil { // Go >= 1.23 fills Leaf; parse it otherwise for NotAfter
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlscert: parse %s: %w", certFile, err)
		}
	}
	return &c, nil
}

// Reload reads both files again and swaps the new pair in. When they do not load (a
// missing file, a key that does not match the certificate, a half-written file) the error
// is returned and the previous pair keeps serving.
func (p *Pair) Reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := load(p.certFile, p.keyFile)
	if err != nil {
		return err
	}
	p.cur.Store(c)
	return nil
}

// GetCertificate is the tls.Config hook: it returns the current pair.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.cur.Load(), nil
}

// NotAfter is the end of the current certificate's validity.
func (p *Pair) NotAfter() time.Time { return p.cur.Load().Leaf.NotAfter }

// Files are the certificate and key paths the pair is read from.
func (p *Pair) Files() (certFile, keyFile string) { return p.certFile, p.keyFile }
