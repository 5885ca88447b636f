// smoke.js runs app.js against a stub DOM and a stub fetch (node, no browser): the
// restore-login-list-create-actions-logout flow, and the one refresh on expired_token.
// Run by TestAppJSFlow: node testdata/smoke.js assets/app.js
'use strict';
const fs = require('fs');
const els = {};
const log = [];
function mk(name) {
  const e = { name, children: [], handlers: {}, hidden: false, textContent: '', className: '', dataset: {}, value: '',
    options: [{}], classList: { toggle() {} },
    addEventListener(t, f) { this.handlers[t] = f; },
    appendChild(c) { this.children.push(c); return c; },
    removeChild(c) { this.children.splice(this.children.indexOf(c), 1); },
    get firstChild() { return this.children[0] || null; },
    remove() { this.options.pop(); }, reset() {}, focus() {},
  };
  e.elements = new Proxy({}, { get(t, k) { if (!t[k]) t[k] = mk(name + '.' + String(k)); return t[k]; } });
  return e;
}
function q(sel) { if (!els[sel]) els[sel] = mk(sel); return els[sel]; }
global.document = {
  body: { dataset: { api: '/api/auth', base: '/console/' } },
  querySelector: q,
  querySelectorAll: (sel) => sel === 'main > section' ? ['signin', 'keys', 'create', 'secret', 'edit', 'activity', 'enroll'].map((v) => { const s = q('#view-' + v); s.id = 'view-' + v; return s; }) : [q(sel + '#1')],
  createElement: (t) => mk(t),
};
let refreshCount = 0;
const key = { id: 'k1', name: 'ci', start: 'sk_live_abc', environment: 'live', type: 'personal', status: 'active', scopes: ['a:b'], created_by: 'u1', created_at: '2025-01-01T00:00:00Z', expires_at: null, last_used_at: null, allowed_ips: [], team: 't1' };
global.fetch = async (url, opts) => {
  log.push(opts.method + ' ' + url + ' ' + JSON.stringify(opts.headers) + ' ' + (opts.body || ''));
  const R = (status, body) => ({ status, ok: status < 300, json: async () => body });
  if (url === '/console/session/refresh') { refreshCount++; return refreshCount === 1 ? R(401, { error: 'invalid_token' }) : R(200, { access: 'A2' }); }
  if (url === '/console/session/login') return R(200, { access: 'A1', user: { id: 'u1', email: 'a@b' } });
  if (url === '/api/auth/users/me/') return R(200, { id: 'u1', email: 'a@b', teams: ['t1'] });
  if (url === '/api/auth/teams/') return R(200, { teams: [{ id: 't1', name: 'Team One' }, { id: 't2', name: 'Team Two' }] });
  if (url === '/api/auth/users/') return R(200, { users: [{ id: 'u1', email: 'a@b' }] });
  if (url.startsWith('/api/auth/api-keys/?')) return opts.headers.Authorization === 'Bearer A1' && refreshCount === 1 ? R(401, { error: 'expired_token' }) : R(200, { keys: [key], next_cursor: 'c1' });
  if (url === '/api/auth/api-keys/' && opts.method === 'POST') return R(201, Object.assign({}, key, { key: 'sk_live_secret' }));
  if (url.endsWith('/refresh/') || url.endsWith('/k1/') && opts.method === 'PATCH') return R(200, key);
  if (url.endsWith('/rotate/')) return R(201, Object.assign({}, key, { id: 'k2', key: 'sk_live_rotated' }));
  if (url.endsWith('/k1/') && opts.method === 'DELETE') return R(200, Object.assign({}, key, { status: 'revoked' }));
  if (url === '/console/session/logout') return { status: 204, ok: true, json: async () => null };
  if (url.endsWith('/activity/')) return R(200, { recent: [{ time: '2025-01-01T00:00:00Z', method: 'GET', path: '/x', route: 'r', status: 200, client_ip: '1.2.3.4' }], daily: [{ date: '2025-01-01', requests: 3 }] });
  return R(404, { error: 'not_found', message: 'nope' });
};
global.navigator = { clipboard: { writeText: async (s) => log.push('copied ' + s) } };
global.window = { confirm: () => true };
eval(fs.readFileSync(process.argv[2], 'utf8'));
function check(what, cond) {
  if (!cond) {
    console.error('FAIL: ' + what + '\n' + log.join('\n'));
    process.exit(1);
  }
}
(async () => {
  const tick = () => new Promise((r) => setTimeout(r, 20));
  await tick();
  check('no session on load: sign-in shown', !q('#view-signin').hidden && q('#view-keys').hidden);
  const f = q('#signin-form'); f.elements.email.value = 'a@b'; f.elements.password.value = 'pw';
  await f.handlers.submit({ preventDefault() {}, target: f });
  await tick();
  check('signed in: key list shown with one row', !q('#view-keys').hidden && q('#keys-table tbody').children.length === 1);
  check('next page offered', !q('#more').hidden);
  check('expired access token refreshed once and retried', log.filter((l) => l.startsWith('POST /console/session/refresh')).length === 2 &&
    log.some((l) => l.startsWith('GET /api/auth/api-keys/?') && l.includes('Bearer A2')));
  check('admin sees the creator filter', !q('#creator-row').hidden);
  const teamOpts = q('#create-form select[name=team]').children.map((o) => o.value + '=' + o.textContent).join();
  check('create form offers the teams and all teams to an admin: ' + teamOpts, teamOpts === '=No team,t1=Team One (t1),t2=Team Two (t2),*=All teams (admin key)');
  const filterOpts = q('#filter-form select[name=team]').children.map((o) => o.value).join();
  check('team filter: ' + filterOpts, filterOpts === 't1,t2,*,none');
  const cells = q('#keys-table tbody').children[0].children.map((c) => c.textContent);
  check('team column: ' + cells, cells.includes('Team One (t1)'));
  const cf = q('#create-form'); cf.elements.name.value = 'ci'; cf.elements.expires.value = '30'; cf.elements.environment.value = 'test';
  cf.elements.scopes.value = 'a:b, c:d'; cf.elements.allowed_ips.value = '10.0.0.0/8'; cf.elements.team.value = 't2';
  await cf.handlers.submit({ preventDefault() {}, target: cf });
  check('create body', log.some((l) => l.includes('"scopes":["a:b","c:d"]') && l.includes('"expires_in_days":30') && l.includes('"environment":"test"') && l.includes('"allowed_ips":["10.0.0.0/8"]') && l.includes('"team":"t2"') && !l.includes('"type"')));
  check('new key shown once', q('#secret-value').textContent === 'sk_live_secret' && !q('#view-secret').hidden);
  cf.elements.name.value = 'ops'; cf.elements.team.value = '*';
  await cf.handlers.submit({ preventDefault() {}, target: cf });
  check('all teams makes an admin key', log.some((l) => l.includes('"name":"ops"') && l.includes('"type":"admin"') && l.includes('"team":"*"')));
  await q('#copy').handlers.click();
  check('copied', log.includes('copied sk_live_secret'));
  await q('#secret-done').handlers.click();
  await tick();
  check('secret gone', q('#secret-value').textContent === '');
  const row = q('#keys-table tbody').children[0];
  const actions = row.children[row.children.length - 1];
  const names = actions.children.map((b) => b.textContent);
  check('row actions ' + names, names.join() === 'Activity,Edit,Refresh,Rotate,Revoke');
  for (const b of actions.children) {
    await b.handlers.click();
    await tick();
    check(b.textContent + ': no error (' + q('#status').textContent + ')', q('#status').className !== 'error');
    if (b.textContent === 'Activity') {
      check('activity tables', q('#daily-table tbody').children.length === 1 && q('#recent-table tbody').children.length === 1);
    }
    if (b.textContent === 'Edit') {
      const ef = q('#edit-form'); ef.elements.name.value = 'renamed';
      await ef.handlers.submit({ preventDefault() {}, target: ef });
      check('edit sends only the change', log.some((l) => l.startsWith('PATCH /api/auth/api-keys/k1/') && l.includes('{"name":"renamed"}')));
    }
    if (b.textContent === 'Rotate') {
      check('rotated key shown', q('#secret-value').textContent === 'sk_live_rotated');
    }
  }
  check('revoked', log.some((l) => l.startsWith('DELETE /api/auth/api-keys/k1/')));
  await q('#signout').handlers.click();
  check('signed out', !q('#view-signin').hidden && log[log.length - 1].startsWith('POST /console/session/logout'));
  const ef = q('#enroll-start-form'); ef.elements.current_password.value = 'pw';
  await ef.handlers.submit({ preventDefault() {}, target: ef });
  check('enrolment sends the current password', log.some((l) => l.startsWith('POST /api/auth/mfa/totp/enroll/') && l.includes('{"current_password":"pw"}')));
  check('the password field is cleared', ef.elements.current_password.value === '');
  console.log('ok');
})().catch((e) => { console.error('FAIL', e); process.exit(1); });
