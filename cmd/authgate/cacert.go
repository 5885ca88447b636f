package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// transportFor is the HTTP transport of the remote commands. It trusts the system's
// certificate authorities (SSL_CERT_FILE and SSL_CERT_DIR replace them, as for every Go
// program) plus the PEM certificates of cacert: --cacert, else $AUTHGATE_CACERT.
func transportFor(what, cacert string, getenv func(string) string) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cacert == "" {
		cacert = getenv("AUTHGATE_CACERT")
	}
	if cacert == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(cacert)
	if err != nil {
		return nil, fmt.Errorf("%s: --cacert: %w", what, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: --cacert %s: no PEM certificate in the file", what, cacert)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// withTLSHint adds what to do to a certificate error: the usual cause is a gateway whose
// certificate comes from a private or self-signed certificate authority.
func withTLSHint(err error) error {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return fmt.Errorf("%w (the gateway's certificate is not signed by an authority this machine trusts: "+
			"pass --cacert ca.pem or set AUTHGATE_CACERT to trust that authority, or SSL_CERT_FILE to replace the system's list)", err)
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		return fmt.Errorf("%w (use an --addr whose host name is in the gateway's certificate)", err)
	}
	return err
}
