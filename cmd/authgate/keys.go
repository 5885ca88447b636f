package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/authgate/authgate/gateway/admin"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const keysUsage = `usage: authgate keys <command> [flags]

commands:
  create --name N [--scopes a,b] [--expires-in DAYS] [--ip CIDR]... [--env live|test]
         [--type personal|admin] [--team ID|*] [--description D] [--rate-limit 100/1m]
         [--created-by ID]
  list [--search TEXT] [--created-by ID] [--team ID|*|none] [--env live|test]
       [--status active|expired|revoked]
       [--stale] [--unused] [--expiring]
       [--sort name|created_at|expires_at|last_used_at] [--order asc|desc] [--limit N] [--all]
  show KEY | refresh KEY | revoke KEY | activity KEY
         KEY is a key ID (key_…) or the name of one key (see "keys by name" below)
  edit KEY [--name N] [--description D] [--scopes a,b] [--ip CIDR]... [--expires-in DAYS]
          [--rate-limit 100/1m|none] [--team ID|*]   (--team: admins only)
  rotate KEY [--revoke-old-after 24h]
  generate [--env live|test] [--config F | --prefix sk]

connection (every command but generate):
  --addr URL      management API (default $AUTHGATE_ADDR, else the saved login's, else
                  http://localhost:8080)
  --prefix PATH   auth_api.prefix (default /api/auth)
  --token T       credential (default $AUTHGATE_TOKEN, else the one saved by 'authgate token set')
  --config FILE   instead of --addr: work directly on the store of FILE (gateway down,
                  first admin); create, list, show, edit, refresh, rotate, revoke, activity
  --cacert FILE   trust this CA certificate (PEM) for the gateway's TLS (default $AUTHGATE_CACERT)

output (create, list, show, edit, refresh, rotate, revoke, activity):
  -o table|json|yaml   a table or field lines (default), the API's JSON, or the same as YAML
  --json               the same as -o json
  -q, --quiet          IDs only, one a line (not with create, rotate or activity)
  --no-headers         no header line above a table

keys by name: a KEY that is not a key ID is looked up as an exact, case-sensitive name
among the keys the caller can list. One key of that name: that key. Several: the only
active one among them, else an error listing their IDs. A key ID always wins.
`

// keyBackend is where the keys commands act: the management API (remoteKeys) or the
// configured store itself (directKeys). Every method returns the management API's JSON.
type keyBackend interface {
	create(ctx context.Context, req createBody) ([]byte, error)
	list(ctx context.Context, q url.Values) ([]byte, error)
	get(ctx context.Context, id string) ([]byte, error)
	edit(ctx context.Context, id string, f admin.KeyFields) ([]byte, error)
	refresh(ctx context.Context, id string) ([]byte, error)
	rotate(ctx context.Context, id string, revokeOldAfter *string) ([]byte, error)
	revoke(ctx context.Context, id string) ([]byte, error)
	activity(ctx context.Context, id string) ([]byte, error)
	close() error
}

// createBody is the body of POST /api-keys/.
type createBody struct {
	admin.KeyFields
	Environment string `json:"environment,omitempty"`
	Type        string `json:"type,omitempty"`
	// CreatedBy is used by direct mode only; the API takes the caller as creator.
	CreatedBy string `json:"-"`
}

// apiError is an error answer of the management API, or its direct-mode equivalent.
// main prints it as "authgate: <code>: <message>".
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// keysFlags are the flags every keys command but generate takes.
type keysFlags struct {
	addr, prefix, token, config, cacert string
	out                                 output
}

func (kf *keysFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&kf.addr, "addr", "", "management API address (default $AUTHGATE_ADDR, else http://localhost:8080)")
	fs.StringVar(&kf.prefix, "prefix", "/api/auth", "management API prefix (auth_api.prefix)")
	fs.StringVar(&kf.token, "token", "", "credential (default $AUTHGATE_TOKEN, else the saved one)")
	fs.StringVar(&kf.config, "config", "", "work directly on the store of this gateway.yaml instead of the API")
	fs.StringVar(&kf.cacert, "cacert", "", "PEM file of the certificate authority of the gateway's TLS certificate (default $AUTHGATE_CACERT)")
	kf.out.register(fs)
}

// listFlag collects a repeatable flag whose values may also be comma lists.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	l.set = true
	if l.vals == nil {
		l.vals = []string{} // never nil once set: --ip "" sends [] and clears the list
	}
	l.vals = append(l.vals, splitList(s)...)
	return nil
}

// splitList splits a comma list, dropping blanks; "" is an empty list.
func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseRateLimitFlag reads "100/1m" (or "100", per minute); "none" clears the override.
func parseRateLimitFlag(s string) (*admin.RateLimitJSON, error) {
	if s == "none" || s == "" {
		return &admin.RateLimitJSON{}, nil
	}
	n, per, _ := strings.Cut(s, "/")
	req, err := strconv.Atoi(n)
	if err != nil || req <= 0 {
		return nil, fmt.Errorf("--rate-limit %q: want REQUESTS/DURATION, e.g. 100/1m", s)
	}
	if per != "" {
		if d, err := time.ParseDuration(per); err != nil || d <= 0 {
			return nil, fmt.Errorf("--rate-limit %q: %q is not a positive duration", s, per)
		}
	}
	return &admin.RateLimitJSON{Requests: req, Per: per}, nil
}

// parseInterleaved parses args with fs, allowing positional arguments between flags
// (`keys show ID --json`), and returns the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// keysCmdManage runs every keys command but generate.
func keysCmdManage(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	case "create", "list", "show", "edit", "refresh", "rotate", "revoke", "activity":
	default:
		fmt.Fprint(stderr, keysUsage)
		return fmt.Errorf("keys: unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kf keysFlags
	kf.register(fs)

	// Flags of the commands that take them.
	var (
		name, description, env, typ, rateLimit, createdBy, expiresIn string
		scopes                                                       string
		ips                                                          listFlag
		search, status, sort, order, revokeOldAfter, team            string
		limit                                                        int
		all                                                          bool
		stale, unused, expiring                                      bool
	)
	switch cmd {
	case "create", "edit":
		fs.StringVar(&name, "name", "", "key name")
		fs.StringVar(&description, "description", "", "description")
		fs.StringVar(&scopes, "scopes", "", "comma-separated scopes")
		fs.Var(&ips, "ip", "allowed IP or CIDR (repeatable, or a comma list)")
		fs.StringVar(&expiresIn, "expires-in", "", "expiry in days (one of api_keys.allowed_expiry_days; 0 = never)")
		fs.StringVar(&rateLimit, "rate-limit", "", "rate-limit override REQUESTS/DURATION, e.g. 100/1m (edit: none clears)")
		fs.StringVar(&team, "team", "", "the team the key acts for: a team ID, or * for every team (admin keys)")
		if cmd == "create" {
			fs.StringVar(&env, "env", "", "environment: live or test (default live)")
			fs.StringVar(&typ, "type", "", "personal or admin (default personal)")
			fs.StringVar(&createdBy, "created-by", "cli", "creator recorded on the key (--config mode only)")
		}
	case "list":
		fs.StringVar(&search, "search", "", "keys whose name contains this, in any case (or whose ID starts with key_…)")
		fs.StringVar(&createdBy, "created-by", "", "keys of this user ID")
		fs.StringVar(&team, "team", "", "keys of this team ID; * for all-teams keys, none for keys of no team")
		fs.StringVar(&env, "env", "", "live or test")
		fs.StringVar(&status, "status", "", "active, expired or revoked")
		fs.StringVar(&sort, "sort", "", "name, created_at, expires_at or last_used_at")
		fs.StringVar(&order, "order", "", "asc or desc")
		fs.IntVar(&limit, "limit", 0, "page size (server default 50, at most 200)")
		fs.BoolVar(&all, "all", false, "follow cursors and print every page")
		fs.BoolVar(&stale, "stale", false, "only keys older than api_keys.hygiene.max_age")
		fs.BoolVar(&unused, "unused", false, "only keys not used for api_keys.hygiene.unused_after")
		fs.BoolVar(&expiring, "expiring", false, "only keys expiring within api_keys.hygiene.expiring_within")
	case "rotate":
		fs.StringVar(&revokeOldAfter, "revoke-old-after", "", "revoke the old key after this duration, e.g. 24h (0s: now)")
	}
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the flag set has printed its usage
	}
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := kf.out.check("keys " + cmd); err != nil {
		return err
	}
	if kf.out.quiet && (cmd == "create" || cmd == "rotate" || cmd == "activity") {
		return fmt.Errorf("keys %s: --quiet works with list, show, edit, refresh and revoke", cmd)
	}

	var id string
	switch cmd {
	case "create", "list":
		if len(pos) != 0 {
			return fmt.Errorf("keys %s: unexpected argument %q", cmd, pos[0])
		}
	default:
		if len(pos) != 1 || pos[0] == "" {
			return fmt.Errorf("keys %s: want one key ID or name, e.g. authgate keys %s key_… or authgate keys %s billing-reader", cmd, cmd, cmd)
		}
		id = pos[0]
	}

	var fields admin.KeyFields
	if cmd == "create" || cmd == "edit" {
		if set["name"] {
			fields.Name = &name
		}
		if set["description"] {
			fields.Description = &description
		}
		if set["scopes"] {
			s := splitList(scopes)
			fields.Scopes = &s
		}
		if ips.set {
			fields.AllowedIPs = &ips.vals
		}
		if set["expires-in"] {
			d, err := strconv.Atoi(strings.TrimSuffix(expiresIn, "d"))
			if expiresIn == "never" {
				d, err = 0, nil
			}
			if err != nil || d < 0 {
				return fmt.Errorf("keys %s: --expires-in %q: want a number of days (0 or never: no expiry)", cmd, expiresIn)
			}
			fields.ExpiresInDays = &d
		}
		if set["team"] {
			fields.Team = &team
		}
		if set["rate-limit"] {
			rl, err := parseRateLimitFlag(rateLimit)
			if err != nil {
				return fmt.Errorf("keys %s: %w", cmd, err)
			}
			fields.RateLimit = rl
		}
	}
	if cmd == "create" && set["created-by"] && kf.config == "" {
		return errors.New("keys create: --created-by works only with --config; the API records the caller as the creator")
	}
	if cmd == "create" && fields.Name == nil {
		return errors.New("keys create: --name is required")
	}
	if cmd == "edit" && fields == (admin.KeyFields{}) {
		return errors.New("keys edit: nothing to change: give --name, --description, --scopes, --ip, --expires-in, --rate-limit or --team")
	}

	b, err := openBackend(ctx, kf, set, getenv, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	if id != "" {
		if id, err = resolveKey(ctx, b, cmd, id); err != nil {
			return err
		}
	}

	var body []byte
	switch cmd {
	case "create":
		body, err = b.create(ctx, createBody{KeyFields: fields, Environment: env, Type: typ, CreatedBy: createdBy})
	case "list":
		q := url.Values{}
		for k, v := range map[string]string{"q": search, "created_by": createdBy, "environment": env,
			"status": status, "sort": sort, "order": order, "team": team} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if limit != 0 {
			q.Set("limit", strconv.Itoa(limit))
		}
		for k, v := range map[string]bool{"stale": stale, "unused": unused, "expiring": expiring} {
			if v {
				q.Set(k, "true")
			}
		}
		return listKeys(ctx, b, q, all, kf.out, stdout)
	case "show":
		body, err = b.get(ctx, id)
	case "edit":
		body, err = b.edit(ctx, id, fields)
	case "refresh":
		body, err = b.refresh(ctx, id)
	case "rotate":
		var after *string
		if set["revoke-old-after"] {
			after = &revokeOldAfter
		}
		body, err = b.rotate(ctx, id, after)
	case "revoke":
		body, err = b.revoke(ctx, id)
	case "activity":
		if body, err = b.activity(ctx, id); err != nil {
			return err
		}
		if kf.out.structured() {
			return kf.out.document(stdout, body)
		}
		return printActivity(stdout, body)
	}
	if err != nil {
		return err
	}
	if kf.out.structured() {
		if cmd == "create" || cmd == "rotate" {
			fmt.Fprintln(stderr, "authgate: the \"key\" field is the plaintext key; it is shown once and cannot be retrieved again")
		}
		return kf.out.document(stdout, body)
	}
	var k admin.KeyView
	if err := json.Unmarshal(body, &k); err != nil {
		return fmt.Errorf("keys %s: unexpected answer: %w", cmd, err)
	}
	if kf.out.quiet {
		_, err := fmt.Fprintln(stdout, k.ID)
		return err
	}
	switch cmd {
	case "rotate":
		fmt.Fprintf(stdout, "rotated %s: new key %s\n\n", id, k.ID)
	case "revoke":
		fmt.Fprintf(stdout, "revoked %s\n\n", k.ID)
	}
	return printKey(stdout, k)
}

// listKeys prints one page, or every page with all. As JSON or YAML the keys are printed
// as the API sent them; --all joins the pages into one {"keys": [...], "next_cursor": null}.
func listKeys(ctx context.Context, b keyBackend, q url.Values, all bool, o output, stdout io.Writer) error {
	raw := []json.RawMessage{}
	for {
		body, err := b.list(ctx, q)
		if err != nil {
			return err
		}
		if o.structured() && !all {
			return o.document(stdout, body)
		}
		var p struct {
			Keys       []json.RawMessage `json:"keys"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("keys list: unexpected answer: %w", err)
		}
		raw = append(raw, p.Keys...)
		more := p.NextCursor != nil && *p.NextCursor != ""
		if all && more {
			q.Set("cursor", *p.NextCursor)
			continue
		}
		if o.structured() {
			joined, err := json.Marshal(map[string]any{"keys": raw, "next_cursor": nil})
			if err != nil {
				return fmt.Errorf("keys list: %w", err)
			}
			return o.document(stdout, joined)
		}
		keys := make([]admin.KeyView, len(raw))
		for i, r := range raw {
			if err := json.Unmarshal(r, &keys[i]); err != nil {
				return fmt.Errorf("keys list: unexpected answer: %w", err)
			}
		}
		if err := printKeyTable(stdout, o, keys); err != nil {
			return err
		}
		if more && !o.quiet && !o.noHeaders {
			fmt.Fprintln(stdout, "(more keys: add --all, or narrow with --search, --env, --status or --stale/--unused/--expiring)")
		}
		return nil
	}
}

// writeRaw prints an API answer as it came, ending with one newline.
func writeRaw(w io.Writer, body []byte) error {
	body = []byte(strings.TrimRight(string(body), "\n"))
	_, err := fmt.Fprintf(w, "%s\n", body)
	return err
}
