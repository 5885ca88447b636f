// authgate web console. Plain JavaScript, no framework and no build step. The access
// token lives in the variable `state.access` only; the refresh token is an HttpOnly
// cookie this script never sees. The DOM is built with createElement and textContent:
// data from the server is never parsed as HTML.
'use strict';

(function () {
  const body = document.body;
  const API = body.dataset.api;       // auth_api.prefix, e.g. /api/auth
  const BASE = body.dataset.base;     // console.path, e.g. /console/
  const CSRF = { 'X-Requested-With': 'authgate-console' };

  const state = {
    access: '',
    user: null,
    admin: false,
    users: {},          // id -> email, for admins
    teams: {},          // team id -> name: every team for admins, the user's own otherwise
    query: { q: '', created_by: '', team: '', sort: 'created_at', order: 'desc' },
    cursor: '',
    editing: null,      // key being edited
    secret: '',
  };

  const $ = (sel) => document.querySelector(sel);

  // ---- small DOM helpers ----

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) {
      e.textContent = String(text);
    }
    if (cls) {
      e.className = cls;
    }
    return e;
  }

  function button(text, fn) {
    const b = el('button', text);
    b.type = 'button';
    b.addEventListener('click', fn);
    return b;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function show(view) {
    document.querySelectorAll('main > section').forEach((s) => {
      s.hidden = s.id !== 'view-' + view;
    });
    $('#whoami').hidden = !state.user;
  }

  function say(msg, isError) {
    const s = $('#status');
    s.textContent = msg || '';
    s.hidden = !msg;
    s.className = isError ? 'error' : 'info';
  }

  function errorText(res) {
    const d = res.data || {};
    if (d.message) {
      return d.message + (d.error ? ' (' + d.error + ')' : '');
    }
    return 'request failed: HTTP ' + res.status;
  }

  function list(text) {
    return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }

  function when(ts) {
    if (!ts) {
      return '—';
    }
    const d = new Date(ts);
    return isNaN(d) ? String(ts) : d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  }

  // ---- HTTP ----

  async function readJSON(res) {
    try {
      return await res.json();
    } catch (e) {
      return null;
    }
  }

  // session calls one of the console's session endpoints; the cookie goes along.
  async function session(name, payload, auth) {
    const headers = Object.assign({ 'Content-Type': 'application/json' }, CSRF);
    if (auth) {
      headers.Authorization = 'Bearer ' + auth;
    }
    const res = await fetch(BASE + 'session/' + name, {
      method: 'POST',
      headers: headers,
      credentials: 'same-origin',
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    return { status: res.status, ok: res.ok, data: res.status === 204 ? null : await readJSON(res) };
  }

  // restore gets a new access token from the refresh cookie; false when there is no
  // session.
  async function restore() {
    let res;
    try {
      res = await session('refresh');
    } catch (e) {
      return false;
    }
    if (!res.ok || !res.data || !res.data.access) {
      return false;
    }
    state.access = res.data.access;
    return true;
  }

  // api calls the management API with the access token, refreshing it once when it has
  // expired.
  async function api(method, path, payload, retried) {
    const opts = { method: method, headers: { Authorization: 'Bearer ' + state.access }, credentials: 'same-origin' };
    if (payload !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(payload);
    }
    const res = await fetch(API + path, opts);
    const out = { status: res.status, ok: res.ok, data: res.status === 204 ? null : await readJSON(res) };
    if (res.status === 401 && !retried && out.data && out.data.error === 'expired_token') {
      if (await restore()) {
        return api(method, path, payload, true);
      }
      signedOut('Your session has ended; sign in again.');
    }
    return out;
  }

  // ---- sign in and out ----

  function signedOut(msg) {
    state.access = '';
    state.user = null;
    state.admin = false;
    state.users = {};
    $('#signin-form').reset();
    $('#totp-row').hidden = true;
    show('signin');
    say(msg, !!msg);
  }

  async function signedIn() {
    const me = await api('GET', '/users/me/');
    if (!me.ok) {
      signedOut(errorText(me));
      return;
    }
    state.user = me.data;
    $('#user-email').textContent = me.data.email || me.data.id;
    // Admins may list users: that both tells the console it may show everyone's keys
    // and names the creators.
    const users = await api('GET', '/users/');
    state.admin = users.ok;
    state.users = {};
    const sel = $('#filter-form select[name=created_by]');
    while (sel.options.length > 1) {
      sel.remove(1);
    }
    if (users.ok) {
      const all = Array.isArray(users.data) ? users.data : (users.data.users || []);
      all.forEach((u) => {
        state.users[u.id] = u.email;
        const o = el('option', u.email);
        o.value = u.id;
        sel.appendChild(o);
      });
    }
    $('#creator-row').hidden = !state.admin;
    $('#creator-col').hidden = !state.admin;
    await loadTeams();
    say('');
    await loadKeys(false);
  }

  async function onSignIn(ev) {
    ev.preventDefault();
    const f = ev.target;
    const payload = { email: f.elements.email.value, password: f.elements.password.value };
    if (f.elements.totp.value) {
      payload.totp = f.elements.totp.value.trim();
    }
    const res = await session('login', payload);
    if (!res.ok) {
      if (res.data && res.data.error === 'mfa_required') {
        $('#totp-row').hidden = false;
        f.elements.totp.focus();
      }
      if (res.status === 429) {
        say('Too many attempts; wait a little and try again.', true);
      } else {
        say(errorText(res), true);
      }
      return;
    }
    f.elements.password.value = '';
    state.access = res.data.access;
    if (res.data.mfa_enrollment_required) {
      state.user = res.data.user;
      $('#user-email').textContent = res.data.user.email;
      $('#enroll-secret').hidden = true;
      show('enroll');
      say('');
      return;
    }
    await signedIn();
  }

  async function onSignOut() {
    const res = await session('logout', undefined, state.access);
    signedOut(res.ok ? 'Signed out.' : errorText(res));
    if (res.ok) {
      $('#status').className = 'info';
    }
  }

  // ---- TOTP enrolment (an enrolment-only token) ----

  // Enrolment binds an authenticator to the account: the server asks for the current
  // password again, so an access token alone cannot do it.
  async function onEnrollStart(ev) {
    ev.preventDefault();
    const f = ev.target;
    const res = await fetch(API + '/mfa/totp/enroll/', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + state.access, 'Content-Type': 'application/json' },
      body: JSON.stringify({ current_password: f.elements.current_password.value }),
    });
    f.elements.current_password.value = '';
    const data = await readJSON(res);
    if (!res.ok) {
      say(errorText({ status: res.status, data: data }), true);
      return;
    }
    $('#enroll-code').textContent = data.secret;
    $('#enroll-url').textContent = data.otpauth_url;
    $('#enroll-secret').hidden = false;
  }

  async function onEnrollVerify(ev) {
    ev.preventDefault();
    const res = await fetch(API + '/mfa/totp/verify/', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + state.access, 'Content-Type': 'application/json' },
      body: JSON.stringify({ code: ev.target.elements.code.value.trim() }),
    });
    if (!res.ok) {
      say(errorText({ status: res.status, data: await readJSON(res) }), true);
      return;
    }
    ev.target.reset();
    signedOut('');
    say('Two-factor authentication is on. Sign in with a code from your app.', false);
    $('#totp-row').hidden = false;
  }

  // ---- teams ----

  // fillSelect replaces the options of sel after its first `keep` ones by items
  // ([value, label] pairs).
  function fillSelect(sel, keep, items) {
    while (sel.options.length > keep) {
      sel.remove(keep);
    }
    items.forEach((it) => {
      const o = el('option', it[1]);
      o.value = it[0];
      sel.appendChild(o);
    });
  }

  // loadTeams fills the team choices: the create form offers the user's teams (a key is
  // made for one of them) and, to admins, every team and "all teams" for an admin key; the
  // list filter offers the same teams.
  async function loadTeams() {
    const res = await api('GET', '/teams/');
    const teams = res.ok && res.data && Array.isArray(res.data.teams) ? res.data.teams : [];
    state.teams = {};
    teams.forEach((t) => { state.teams[t.id] = t.name; });
    const mine = (state.user && state.user.teams) || [];
    const offered = state.admin ? teams.map((t) => t.id) : mine;
    const items = offered.map((id) => [id, teamName(id)]);
    if (state.admin) {
      items.push(['*', 'All teams (admin key)']);
    }
    if (items.length === 0 || state.admin) {
      items.unshift(['', 'No team']);
    }
    fillSelect($('#create-form select[name=team]'), 0, items);
    const filter = [['*', 'all teams'], ['none', 'no team']];
    fillSelect($('#filter-form select[name=team]'), 1, offered.map((id) => [id, teamName(id)]).concat(state.admin ? filter : []));
  }

  function teamName(id) {
    if (id === '*') {
      return 'all teams';
    }
    if (!id) {
      return '—';
    }
    return state.teams[id] ? state.teams[id] + ' (' + id + ')' : id;
  }

  // ---- keys ----

  function keyQuery() {
    const p = new URLSearchParams();
    Object.keys(state.query).forEach((k) => {
      if (state.query[k]) {
        p.set(k, state.query[k]);
      }
    });
    if (state.cursor) {
      p.set('cursor', state.cursor);
    }
    return '?' + p.toString();
  }

  async function loadKeys(more) {
    if (!more) {
      state.cursor = '';
    }
    const res = await api('GET', '/api-keys/' + keyQuery());
    if (!res.ok) {
      say(errorText(res), true);
      return;
    }
    const tbody = $('#keys-table tbody');
    if (!more) {
      clear(tbody);
    }
    (res.data.keys || []).forEach((k) => tbody.appendChild(keyRow(k)));
    state.cursor = res.data.next_cursor || '';
    $('#more').hidden = !state.cursor;
    document.querySelectorAll('button.sort').forEach((b) => {
      const on = b.dataset.sort === state.query.sort;
      b.classList.toggle('active', on);
      b.dataset.order = on ? state.query.order : '';
    });
    show('keys');
  }

  function keyRow(k) {
    const tr = el('tr');
    const name = el('td');
    name.appendChild(el('strong', k.name));
    name.appendChild(el('div', k.start + '…', 'small'));
    if (k.description) {
      name.appendChild(el('div', k.description, 'small'));
    }
    tr.appendChild(name);
    tr.appendChild(el('td', k.environment + (k.type === 'admin' ? ' (admin)' : '')));
    tr.appendChild(el('td', k.status, 'status-' + k.status));
    tr.appendChild(el('td', (k.scopes || []).length ? k.scopes.join(', ') : 'all of the owner\'s'));
    tr.appendChild(el('td', teamName(k.team)));
    if (state.admin) {
      tr.appendChild(el('td', state.users[k.created_by] || k.created_by));
    }
    tr.appendChild(el('td', when(k.created_at)));
    tr.appendChild(el('td', k.expires_at ? when(k.expires_at) : 'never'));
    tr.appendChild(el('td', when(k.last_used_at)));
    const actions = el('td', null, 'actions');
    actions.appendChild(button('Activity', () => showActivity(k)));
    if (k.status !== 'revoked') {
      actions.appendChild(button('Edit', () => showEdit(k)));
      actions.appendChild(button('Refresh', () => refreshKey(k)));
      actions.appendChild(button('Rotate', () => rotateKey(k)));
      actions.appendChild(button('Revoke', () => revokeKey(k)));
    }
    tr.appendChild(actions);
    return tr;
  }

  function onFilter(ev) {
    ev.preventDefault();
    state.query.q = ev.target.elements.q.value.trim();
    state.query.created_by = state.admin ? ev.target.elements.created_by.value : '';
    state.query.team = ev.target.elements.team.value;
    loadKeys(false);
  }

  function onSort(ev) {
    const field = ev.currentTarget.dataset.sort;
    if (state.query.sort === field) {
      state.query.order = state.query.order === 'asc' ? 'desc' : 'asc';
    } else {
      state.query.sort = field;
      state.query.order = field === 'name' ? 'asc' : 'desc';
    }
    loadKeys(false);
  }

  async function onCreate(ev) {
    ev.preventDefault();
    const f = ev.target;
    const payload = {
      name: f.elements.name.value.trim(),
      expires_in_days: parseInt(f.elements.expires.value, 10),
      environment: f.elements.environment.value,
    };
    if (f.elements.description.value.trim()) {
      payload.description = f.elements.description.value.trim();
    }
    if (f.elements.scopes.value.trim()) {
      payload.scopes = list(f.elements.scopes.value);
    }
    if (f.elements.allowed_ips.value.trim()) {
      payload.allowed_ips = list(f.elements.allowed_ips.value);
    }
    const team = f.elements.team.value;
    if (team === '*') {
      payload.type = 'admin';
    }
    if (team) {
      payload.team = team;
    }
    const res = await api('POST', '/api-keys/', payload);
    if (!res.ok) {
      say(errorText(res), true);
      return;
    }
    f.reset();
    showSecret(res.data.key, 'Key "' + res.data.name + '" created.');
  }

  function showSecret(secret, msg) {
    state.secret = secret;
    $('#secret-value').textContent = secret;
    say(msg, false);
    show('secret');
  }

  async function onCopy() {
    try {
      await navigator.clipboard.writeText(state.secret);
      say('Copied to the clipboard.', false);
    } catch (e) {
      say('The browser refused the clipboard: select the key and copy it by hand.', true);
    }
  }

  function onSecretDone() {
    state.secret = '';
    $('#secret-value').textContent = '';
    say('');
    loadKeys(false);
  }

  function showEdit(k) {
    state.editing = k;
    const f = $('#edit-form');
    $('#edit-id').textContent = k.id;
    f.elements.name.value = k.name;
    f.elements.description.value = k.description || '';
    f.elements.scopes.value = (k.scopes || []).join(', ');
    f.elements.allowed_ips.value = (k.allowed_ips || []).join(', ');
    say('');
    show('edit');
  }

  async function onEdit(ev) {
    ev.preventDefault();
    const f = ev.target;
    const k = state.editing;
    const payload = {};
    if (f.elements.name.value.trim() !== k.name) {
      payload.name = f.elements.name.value.trim();
    }
    if (f.elements.description.value.trim() !== (k.description || '')) {
      payload.description = f.elements.description.value.trim();
    }
    const scopes = list(f.elements.scopes.value);
    if (scopes.join(',') !== (k.scopes || []).join(',')) {
      payload.scopes = scopes;
    }
    const ips = list(f.elements.allowed_ips.value);
    if (ips.join(',') !== (k.allowed_ips || []).join(',')) {
      payload.allowed_ips = ips;
    }
    if (Object.keys(payload).length === 0) {
      loadKeys(false);
      return;
    }
    const res = await api('PATCH', '/api-keys/' + encodeURIComponent(k.id) + '/', payload);
    if (!res.ok) {
      say(errorText(res), true);
      return;
    }
    say('Key "' + res.data.name + '" saved.', false);
    loadKeys(false);
  }

  async function refreshKey(k) {
    const res = await api('POST', '/api-keys/' + encodeURIComponent(k.id) + '/refresh/');
    if (!res.ok) {
      say(errorText(res), true);
      return;
    }
    say('Key "' + k.name + '" now expires ' + (res.data.expires_at ? when(res.data.expires_at) : 'never') + '.', false);
    loadKeys(false);
  }

  async function rotateKey(k) {
    if (!window.confirm('Rotate "' + k.name + '"? A new key with the same settings is created; the old one keeps working until you revoke it.')) {
      return;
    }
    const res = await api('POST', '/api-keys/' + encodeURIComponent(k.id) + '/rotate/');
    if (!res.ok) {
      say(errorText(res), true);
      return;
    }
    showSecret(res.data.key, 'Key "' + k.name + '" rotated: this is the new one.');
  }

  async function revokeKey(k) {
    if (!window.confirm('Revoke "' + k.name + '"? Requests with it are refused at once. This cannot be undone.')) {
      return;
    }
    const res = await api('DELETE', '/api-keys/' + encodeURIComponent(k.id) + '/');
    if (!res.ok) {
      say(errorText(res), true);
      return;
    }
    say('Key "' + k.name + '" revoked.', false);
    loadKeys(false);
  }

  async function showActivity(k) {
    const res = await api('GET', '/api-keys/' + encodeURIComponent(k.id) + '/activity/');
    if (!res.ok) {
      say(errorText(res), true);
      return;
    }
    $('#activity-name').textContent = k.name;
    const daily = $('#daily-table tbody');
    clear(daily);
    (res.data.daily || []).forEach((d) => {
      const tr = el('tr');
      tr.appendChild(el('td', d.date));
      tr.appendChild(el('td', d.requests));
      daily.appendChild(tr);
    });
    const recent = $('#recent-table tbody');
    clear(recent);
    (res.data.recent || []).slice(0, 200).forEach((e) => {
      const tr = el('tr');
      [when(e.time), e.method, e.path, e.route, e.status, e.client_ip].forEach((v) => tr.appendChild(el('td', v)));
      recent.appendChild(tr);
    });
    if (!recent.firstChild) {
      const tr = el('tr');
      const td = el('td', 'No requests yet.');
      td.colSpan = 6;
      tr.appendChild(td);
      recent.appendChild(tr);
    }
    say('');
    show('activity');
  }

  function onCancel() {
    say('');
    loadKeys(false);
  }

  // ---- start ----

  async function start() {
    $('#signin-form').addEventListener('submit', onSignIn);
    $('#signout').addEventListener('click', onSignOut);
    $('#enroll-start-form').addEventListener('submit', onEnrollStart);
    $('#enroll-form').addEventListener('submit', onEnrollVerify);
    $('#filter-form').addEventListener('submit', onFilter);
    document.querySelectorAll('button.sort').forEach((b) => b.addEventListener('click', onSort));
    $('#more').addEventListener('click', () => loadKeys(true));
    $('#new-key').addEventListener('click', () => { say(''); show('create'); });
    $('#create-form').addEventListener('submit', onCreate);
    $('#edit-form').addEventListener('submit', onEdit);
    $('#copy').addEventListener('click', onCopy);
    $('#secret-done').addEventListener('click', onSecretDone);
    document.querySelectorAll('button.cancel').forEach((b) => b.addEventListener('click', onCancel));
    // A session survives a reload through the refresh cookie.
    if (await restore()) {
      await signedIn();
    } else {
      signedOut('');
    }
  }

  start().catch((e) => say('The console failed: ' + e.message, true));
})();
