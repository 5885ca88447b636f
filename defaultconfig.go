// Package authgate holds what belongs to the repository as a whole: the embedded default
// configuration. The gateway itself lives in gateway/, its configuration in config/.
package authgate

import _ "embed"

// DefaultConfig is gateway.yaml, the configuration `authgate serve` uses without --config.
//
//go:embed gateway.yaml
var DefaultConfig []byte
