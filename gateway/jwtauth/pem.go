package jwtauth

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadPublicKeyFiles reads public keys from PEM files. A file may hold several blocks of
// type PUBLIC KEY (PKIX), RSA PUBLIC KEY (PKCS #1) or CERTIFICATE (its public key is
// used; the certificate itself is not validated). Any other block, such as a private key,
// is an error, as is a file without PEM blocks or a key type the verifier does not
// support. Errors name the file and the block number, never its content.
func LoadPublicKeyFiles(paths []string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: load public keys: %w", err)
		}
		got, err := parsePublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: load public keys from %s: %w", path, err)
		}
		keys = append(keys, got...)
	}
	return keys, nil
}

// parsePublicKeys returns the keys of every PEM block in data.
func parsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		key, err := parseBlock(block)
		if err != nil {
			return nil, fmt.Errorf("pem block %d: %w", n, err)
		}
		if _, err := normalize(key); err != nil {
			return nil, fmt.Errorf("pem block %d: %w", n, err)
		}
		keys = append(keys, key)
	}
	if len(bytes.TrimSpace(data)) > 0 && len(keys) > 0 {
		return nil, errors.New("trailing data after the last pem block")
	}
	if len(keys) == 0 {
		return nil, errors.New("no pem block found")
	}
	return keys, nil
}

func parseBlock(b *pem.Block) (crypto.PublicKey, error) {
	switch b.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	default:
		// Never echo the block: it may be a private key.
		return nil, fmt.Errorf("unexpected block type %.32q, want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", b.Type)
	}
}
