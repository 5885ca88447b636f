package user

import (
	"context"
	"fmt"
	"slices"
)

// CreateTeam is Store.CreateTeam.
func (m *MemStore) CreateTeam(ctx context.Context, t Team) (Team, error) {
	t, err := prepareTeam(t, m.now())
	if err != nil {
		return Team{}, fmt.Errorf("user: create team %s: %w", t.ID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.teams == nil {
		m.teams = make(map[string]Team)
	}
	if _, ok := m.teams[t.ID]; ok {
		return Team{}, fmt.Errorf("user: create team %s: %w", t.ID, ErrTeamConflict)
	}
	m.teams[t.ID] = t
	return t, nil
}

// GetTeam is Store.GetTeam.
func (m *MemStore) GetTeam(ctx context.Context, id string) (Team, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.teams[id]
	if !ok {
		return Team{}, fmt.Errorf("user: get team %s: %w", id, ErrTeamNotFound)
	}
	return t, nil
}

// ListTeams is Store.ListTeams.
func (m *MemStore) ListTeams(ctx context.Context) ([]Team, error) {
	m.mu.RLock()
	teams := make([]Team, 0, len(m.teams))
	for _, t := range m.teams {
		teams = append(teams, t)
	}
	m.mu.RUnlock()
	sortTeams(teams)
	return teams, nil
}

// RenameTeam is Store.RenameTeam.
func (m *MemStore) RenameTeam(ctx context.Context, id, name string) (Team, error) {
	if err := ValidateTeamName(name); err != nil {
		return Team{}, fmt.Errorf("user: rename team %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.teams[id]
	if !ok {
		return Team{}, fmt.Errorf("user: rename team %s: %w", id, ErrTeamNotFound)
	}
	t.Name, t.UpdatedAt = name, m.now().UTC().Round(0)
	m.teams[id] = t
	return t, nil
}

// DeleteTeam is Store.DeleteTeam.
func (m *MemStore) DeleteTeam(ctx context.Context, id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.teams[id]; !ok {
		return nil, fmt.Errorf("user: delete team %s: %w", id, ErrTeamNotFound)
	}
	var members []string
	for uid, u := range m.byID {
		if slices.Contains(u.Teams, id) {
			u.Teams = withoutTeam(u.Teams, id)
			u.UpdatedAt = m.now().UTC().Round(0)
			m.byID[uid] = u
			members = append(members, uid)
		}
	}
	delete(m.teams, id)
	slices.Sort(members)
	return members, nil
}

// AddMember is Store.AddMember.
func (m *MemStore) AddMember(ctx context.Context, teamID, userID string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[userID]
	if !ok {
		return User{}, fmt.Errorf("user: add member %s: %w", userID, ErrNotFound)
	}
	t, ok := m.teams[teamID]
	if !ok {
		return User{}, fmt.Errorf("user: add member %s: %w", teamID, ErrTeamNotFound)
	}
	if err := membershipCheck(u, t); err != nil {
		return User{}, fmt.Errorf("user: add member: %w", err)
	}
	if slices.Contains(u.Teams, teamID) {
		return u, nil
	}
	u.Teams = withTeam(u.Teams, teamID)
	u.UpdatedAt = m.now().UTC().Round(0)
	m.byID[userID] = u
	return u, nil
}

// RemoveMember is Store.RemoveMember.
func (m *MemStore) RemoveMember(ctx context.Context, teamID, userID string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[userID]
	if !ok {
		return User{}, fmt.Errorf("user: remove member %s: %w", userID, ErrNotFound)
	}
	if !slices.Contains(u.Teams, teamID) {
		return u, nil
	}
	u.Teams = withoutTeam(u.Teams, teamID)
	u.UpdatedAt = m.now().UTC().Round(0)
	m.byID[userID] = u
	return u, nil
}
