// Command authgate is the gateway binary: serve, config validate, version.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authgate:", err)
		stop()
		os.Exit(1)
	}
}

const usage = `usage: authgate <command> [flags]

commands:
  serve [--config gateway.yaml] [--demo-upstream 127.0.0.1:9000]
                           run the gateway (without --config: the embedded default)
  config validate --config gateway.yaml
                           check a configuration file; print every problem
  keys create|list|show|edit|refresh|rotate|revoke|activity ... [--json]
                           manage API keys through the management API (--addr, --token)
                           or directly on the store (--config gateway.yaml);
                           see authgate keys help
  keys generate [--env live|test] [--prefix sk]
                           print a new well-formed API key; touches nothing
  token set <credential>   save the credential remote commands send
  token remove             delete the saved credential
  version                  print the version
`

// run executes one command. It takes the process's resources as arguments so tests can
// call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], getenv, stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "validate" {
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("unknown config command")
		}
		return validateCmd(args[2:], getenv, stdout, stderr)
	case "keys":
		return keysCmd(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return tokenCmd(args[1:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "authgate", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
