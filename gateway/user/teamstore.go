package user

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store/cas"
)

// Teams live beside the users, in the same hash slot, so a change that touches a team
// and its members is one atomic script:
//
//	<base>teams    hash: team ID -> the team as JSON
//
// A user's memberships are in the user's record (User.Teams): reading a user, which
// every credential check of theirs does already, reads their teams too.

func (s *Store) teamsKey() string { return s.base + "teams" }

// createTeamScript stores a team unless its ID is taken: 'exists' or 'ok'.
// KEYS[1] teams. ARGV[1] id, ARGV[2] record.
var createTeamScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 'exists' end
return 'ok'
`)

// replaceTeamScript replaces a team's record if it still holds ARGV[2]: 'changed' or 'ok'.
// KEYS[1] teams. ARGV[1] id, ARGV[2] old record, ARGV[3] new record.
var replaceTeamScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 'changed' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 'ok'
`)

// deleteTeamScript deletes a team and takes it out of its members' records, all or
// nothing: if the team or any of those records changed since they were read, it writes
// nothing and returns 'changed'.
// KEYS[1] recs, KEYS[2] teams. ARGV[1] team id, ARGV[2] team record, then for each member
// three values: user id, old record, new record.
var deleteTeamScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 'changed' end
for i = 3, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i+1] then return 'changed' end
end
for i = 3, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+2])
end
redis.call('HDEL', KEYS[2], ARGV[1])
return 'ok'
`)

// memberScript replaces a user's record (a membership change) if it still holds ARGV[2]
// and, when ARGV[5] is not empty, the team ARGV[4] still holds the record ARGV[5] (so a
// user never joins a team deleted or moved meanwhile): 'changed' or 'ok'.
// KEYS[1] recs, KEYS[2] teams. ARGV[1] user id, ARGV[2] old record, ARGV[3] new record,
// ARGV[4] team id, ARGV[5] team record or "".
var memberScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 'changed' end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[2], ARGV[4]) ~= ARGV[5] then return 'changed' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 'ok'
`)

// CreateTeam stores a new team. A zero CreatedAt becomes now. It returns ErrInvalid for
// a bad ID or name, ErrTeamConflict when the ID is taken.
func (s *Store) CreateTeam(ctx context.Context, t Team) (Team, error) {
	t, err := prepareTeam(t, s.now())
	if err != nil {
		return Team{}, fmt.Errorf("user: create team %s: %w", t.ID, err)
	}
	rec, err := encodeTeam(t)
	if err != nil {
		return Team{}, err
	}
	res, err := createTeamScript.Run(ctx, s.rdb, []string{s.teamsKey()}, t.ID, rec).Text()
	switch {
	case err != nil:
		return Team{}, fmt.Errorf("user: create team %s: %w", t.ID, err)
	case res == "exists":
		return Team{}, fmt.Errorf("user: create team %s: %w", t.ID, ErrTeamConflict)
	}
	return t, nil
}

// GetTeam returns the team with ID id, or ErrTeamNotFound.
func (s *Store) GetTeam(ctx context.Context, id string) (Team, error) {
	t, _, err := s.getTeam(ctx, id)
	if err != nil {
		return Team{}, fmt.Errorf("user: get team %s: %w", id, err)
	}
	return t, nil
}

func (s *Store) getTeam(ctx context.Context, id string) (Team, string, error) {
	rec, err := s.rdb.HGet(ctx, s.teamsKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return Team{}, "", ErrTeamNotFound
	}
	if err != nil {
		return Team{}, "", err
	}
	t, err := decodeTeam(rec)
	return t, rec, err
}

// ListTeams returns every team, ordered by name. It reads them in one command.
func (s *Store) ListTeams(ctx context.Context) ([]Team, error) {
	recs, err := s.rdb.HVals(ctx, s.teamsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("user: list teams: %w", err)
	}
	teams := make([]Team, 0, len(recs))
	for _, rec := range recs {
		t, err := decodeTeam(rec)
		if err != nil {
			return nil, fmt.Errorf("user: list teams: %w", err)
		}
		teams = append(teams, t)
	}
	sortTeams(teams)
	return teams, nil
}

// RenameTeam gives team id a new name. It returns the team, ErrTeamNotFound or
// ErrInvalid.
func (s *Store) RenameTeam(ctx context.Context, id, name string) (Team, error) {
	if err := ValidateTeamName(name); err != nil {
		return Team{}, fmt.Errorf("user: rename team %s: %w", id, err)
	}
	for i := range casAttempts {
		if err := cas.Pause(ctx, i); err != nil {
			return Team{}, fmt.Errorf("user: rename team %s: %w", id, err)
		}
		t, old, err := s.getTeam(ctx, id)
		if err != nil {
			return Team{}, fmt.Errorf("user: rename team %s: %w", id, err)
		}
		t.Name, t.UpdatedAt = name, s.now().UTC().Round(0)
		rec, err := encodeTeam(t)
		if err != nil {
			return Team{}, err
		}
		res, err := replaceTeamScript.Run(ctx, s.rdb, []string{s.teamsKey()}, id, old, rec).Text()
		if err != nil {
			return Team{}, fmt.Errorf("user: rename team %s: %w", id, err)
		}
		if res == "ok" {
			return t, nil
		}
	}
	return Team{}, fmt.Errorf("user: rename team %s: record kept changing: %w", id, ErrConflict)
}

// DeleteTeam deletes team id and removes it from every member's teams, in one atomic
// write. It returns the IDs of the users who were members (their credentials must be
// re-read), or ErrTeamNotFound.
func (s *Store) DeleteTeam(ctx context.Context, id string) ([]string, error) {
	for i := range casAttempts {
		if err := cas.Pause(ctx, i); err != nil {
			return nil, fmt.Errorf("user: delete team %s: %w", id, err)
		}
		_, teamRec, err := s.getTeam(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("user: delete team %s: %w", id, err)
		}
		all, err := s.rdb.HGetAll(ctx, s.recsKey()).Result()
		if err != nil {
			return nil, fmt.Errorf("user: delete team %s: %w", id, err)
		}
		args := []any{id, teamRec}
		var members []string
		for uid, rec := range all {
			u, err := decodeRecord(rec)
			if err != nil {
				return nil, fmt.Errorf("user: delete team %s: %w", id, err)
			}
			if !slices.Contains(u.Teams, id) {
				continue
			}
			u.Teams = withoutTeam(u.Teams, id)
			u.UpdatedAt = s.now().UTC().Round(0)
			nrec, err := encodeRecord(u)
			if err != nil {
				return nil, err
			}
			args = append(args, uid, rec, nrec)
			members = append(members, uid)
		}
		res, err := deleteTeamScript.Run(ctx, s.rdb, []string{s.recsKey(), s.teamsKey()}, args...).Text()
		if err != nil {
			return nil, fmt.Errorf("user: delete team %s: %w", id, err)
		}
		if res == "ok" {
			slices.Sort(members)
			return members, nil
		}
	}
	return nil, fmt.Errorf("user: delete team %s: records kept changing: %w", id, ErrConflict)
}

// AddMember makes user userID a member of team teamID and returns the user. It returns
// ErrNotFound, ErrTeamNotFound, or ErrInvalid when the user is of another organisation
// than the team. Adding a member again changes nothing.
func (s *Store) AddMember(ctx context.Context, teamID, userID string) (User, error) {
	return s.changeMembership(ctx, teamID, userID, true)
}

// RemoveMember ends user userID's membership of team teamID (which need not exist any
// more) and returns the user, or ErrNotFound. Removing a non-member changes nothing.
func (s *Store) RemoveMember(ctx context.Context, teamID, userID string) (User, error) {
	return s.changeMembership(ctx, teamID, userID, false)
}

func (s *Store) changeMembership(ctx context.Context, teamID, userID string, add bool) (User, error) {
	op := "remove member"
	if add {
		op = "add member"
	}
	for i := range casAttempts {
		if err := cas.Pause(ctx, i); err != nil {
			return User{}, fmt.Errorf("user: %s: %w", op, err)
		}
		u, old, err := s.get(ctx, userID)
		if err != nil {
			return User{}, fmt.Errorf("user: %s %s: %w", op, userID, err)
		}
		teamRec := ""
		if add {
			var t Team
			if t, teamRec, err = s.getTeam(ctx, teamID); err != nil {
				return User{}, fmt.Errorf("user: %s %s: %w", op, teamID, err)
			}
			if err := membershipCheck(u, t); err != nil {
				return User{}, fmt.Errorf("user: %s: %w", op, err)
			}
			if slices.Contains(u.Teams, teamID) {
				return u, nil
			}
			u.Teams = withTeam(u.Teams, teamID)
		} else {
			if !slices.Contains(u.Teams, teamID) {
				return u, nil
			}
			u.Teams = withoutTeam(u.Teams, teamID)
		}
		u.UpdatedAt = s.now().UTC().Round(0)
		rec, err := encodeRecord(u)
		if err != nil {
			return User{}, err
		}
		res, err := memberScript.Run(ctx, s.rdb, []string{s.recsKey(), s.teamsKey()}, userID, old, rec, teamID, teamRec).Text()
		if err != nil {
			return User{}, fmt.Errorf("user: %s %s: %w", op, userID, err)
		}
		if res == "ok" {
			return u, nil
		}
	}
	return User{}, fmt.Errorf("user: %s %s: record kept changing: %w", op, userID, ErrConflict)
}
