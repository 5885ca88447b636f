package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxSecret bounds a password read from standard input, in bytes: far above any real
// password, far below what would hurt (argon2id hashes whatever it is given).
const maxSecret = 4096

// errNoTerminal is returned when a secret is needed, standard input is not a terminal
// and --password-stdin was not given.
var errNoTerminal = errors.New("standard input is not a terminal: pass --password-stdin and pipe the password in")

// prompter reads the secrets of login and users create: from standard input with
// --password-stdin, else from the terminal without echo.
type prompter struct {
	in  io.Reader
	out io.Writer // where prompts go: stderr, so stdout stays the command's answer
	fd  int       // in's file descriptor when it is a terminal, else -1
}

func newPrompter(stdin io.Reader, stderr io.Writer) *prompter {
	p := &prompter{in: stdin, out: stderr, fd: -1}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.fd = int(f.Fd())
	}
	return p
}

// interactive reports whether there is a terminal to prompt on.
func (p *prompter) interactive() bool { return p.fd >= 0 }

// secret asks for one secret on the terminal, without echo.
func (p *prompter) secret(prompt string) (string, error) {
	if !p.interactive() {
		return "", errNoTerminal
	}
	fmt.Fprint(p.out, prompt)
	b, err := term.ReadPassword(p.fd)
	fmt.Fprintln(p.out) // the user's Enter was not echoed
	if err != nil {
		return "", fmt.Errorf("reading from the terminal: %w", err)
	}
	return string(b), nil
}

// newPassword asks for a new password twice, so a typo does not lock anyone out.
func (p *prompter) newPassword() (string, error) {
	pw, err := p.secret("Password: ")
	if err != nil {
		return "", err
	}
	again, err := p.secret("Password (again): ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords differ")
	}
	if pw == "" {
		return "", errors.New("the password is empty")
	}
	return pw, nil
}

// stdinSecret reads the secret piped to standard input (--password-stdin).
func (p *prompter) stdinSecret() (string, error) {
	b, err := io.ReadAll(io.LimitReader(p.in, maxSecret+1))
	if err != nil {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	return parseStdinSecret(b)
}

// parseStdinSecret is the secret in b: one line, its line end ("\n" or "\r\n") removed.
// Nothing else is trimmed: spaces may be part of a password.
func parseStdinSecret(b []byte) (string, error) {
	if len(b) > maxSecret {
		return "", fmt.Errorf("--password-stdin: longer than %d bytes", maxSecret)
	}
	s, ok := strings.CutSuffix(string(b), "\r\n")
	if !ok {
		s = strings.TrimSuffix(s, "\n")
	}
	switch {
	case s == "":
		return "", errors.New("--password-stdin: standard input is empty")
	case strings.ContainsAny(s, "\r\n"):
		return "", errors.New("--password-stdin: want one line")
	}
	return s, nil
}
