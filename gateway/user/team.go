package user

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authgate/authgate/gateway/randid"
	"github.com/authgate/authgate/policy"
)

// ErrTeamNotFound is returned when no team has the given ID. Compare with errors.Is.
var ErrTeamNotFound = errors.New("user: team not found")

// ErrTeamConflict is returned by CreateTeam when the team ID is taken.
var ErrTeamConflict = errors.New("user: team exists")

const (
	teamIDPrefix  = "team_"
	teamIDRandLen = 16
	// MaxTeamIDLen is the longest team ID accepted, in bytes.
	MaxTeamIDLen = 64
	// MaxTeamNameLen is the longest team name accepted, in bytes.
	MaxTeamNameLen = 200
	// MaxTeamsPerUser bounds the teams one user may be a member of: the list travels in
	// every cached credential of the user.
	MaxTeamsPerUser = 256
)

// Team is a team of an organisation: users are its members (User.Teams) and API keys are
// bound to one team. Its ID is what requests name (a path segment, a header, a query
// parameter), so admins may choose it (the tenant ID their upstream uses); it never
// changes. The name is for people and may change.
type Team struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Organization string    `json:"organization"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// NewTeamID returns a new team ID: "team_" and 16 base62 characters from crypto/rand.
func NewTeamID() string { return randid.New(teamIDPrefix, teamIDRandLen) }

// ValidTeamID reports whether id may name a team (policy.ValidTeamID): 1 to
// MaxTeamIDLen bytes of ASCII letters, digits, '.', '_' and '-', starting with a letter
// or a digit.
func ValidTeamID(id string) bool { return policy.ValidTeamID(id) }

// ValidateTeamName checks a team name: 1 to MaxTeamNameLen bytes of valid UTF-8 without
// control characters, not only white space. The error wraps ErrInvalid.
func ValidateTeamName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("%w: team name: required", ErrInvalid)
	case len(name) > MaxTeamNameLen || !utf8.ValidString(name) ||
		strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("%w: team name: want at most %d bytes of UTF-8 without control characters", ErrInvalid, MaxTeamNameLen)
	}
	return nil
}

// prepareTeam checks t before it is stored and fills its times.
func prepareTeam(t Team, now time.Time) (Team, error) {
	if !ValidTeamID(t.ID) {
		return t, fmt.Errorf("%w: team id %q: want 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, t.ID, MaxTeamIDLen)
	}
	if err := ValidateTeamName(t.Name); err != nil {
		return t, err
	}
	if err := validateField("organization", t.Organization); err != nil {
		return t, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	t.CreatedAt = t.CreatedAt.UTC().Round(0)
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	t.UpdatedAt = t.UpdatedAt.UTC().Round(0)
	return t, nil
}

// checkTeamList checks a user's team list: valid IDs, no repeats, at most
// MaxTeamsPerUser.
func checkTeamList(teams []string) error {
	if len(teams) > MaxTeamsPerUser {
		return fmt.Errorf("teams: at most %d", MaxTeamsPerUser)
	}
	for i, id := range teams {
		if !ValidTeamID(id) {
			return fmt.Errorf("teams[%d]: %q is not a team ID", i, id)
		}
		if slices.Contains(teams[:i], id) {
			return fmt.Errorf("teams[%d]: %q listed twice", i, id)
		}
	}
	return nil
}

func encodeTeam(t Team) (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encode team: %w", err)
	}
	return string(b), nil
}

func decodeTeam(s string) (Team, error) {
	var t Team
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return Team{}, fmt.Errorf("decode team: %w", err)
	}
	return t, nil
}

// sortTeams orders teams by name, case-insensitively, then by ID.
func sortTeams(teams []Team) {
	slices.SortFunc(teams, func(a, b Team) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// withTeam returns u's team list with id added (once).
func withTeam(teams []string, id string) []string {
	if slices.Contains(teams, id) {
		return teams
	}
	return append(slices.Clone(teams), id)
}

// withoutTeam returns u's team list without id.
func withoutTeam(teams []string, id string) []string {
	return slices.DeleteFunc(slices.Clone(teams), func(t string) bool { return t == id })
}

// membershipCheck is what AddMember checks before it writes: the team's organisation is
// the user's.
func membershipCheck(u User, t Team) error {
	if u.Organization != t.Organization {
		return fmt.Errorf("%w: user %s is in organisation %q, team %s in %q: a user joins teams of their own organisation",
			ErrInvalid, u.ID, u.Organization, t.ID, t.Organization)
	}
	if len(u.Teams) >= MaxTeamsPerUser && !slices.Contains(u.Teams, t.ID) {
		return fmt.Errorf("%w: user %s is in %d teams already, the most allowed", ErrInvalid, u.ID, MaxTeamsPerUser)
	}
	return nil
}
