/**
 * The Users view, for administrators: every account with its state (admin, deactivated,
 * locked) and its storage against the quota; creating, activating, promoting, unlocking (only a
 * locked account) and deleting (after a confirmation naming the address) accounts. The
 * administrator's own row offers no way to lock themselves out.
 */

import { api, describe, errorBody, jsonRequest, session } from './api.js';
import { confirmAction, formatSize, make, say } from './ui.js';

const list = document.getElementById('users');

function usageText(user) {
  if (typeof user.used_bytes !== 'number') return '';
  return user.quota_bytes
    ? `${formatSize(user.used_bytes)} of ${formatSize(user.quota_bytes)} used`
    : `${formatSize(user.used_bytes)} used, no quota`;
}

function button(label, email, onClick) {
  const node = make('button', {
    className: 'secondary small', text: label, attrs: { type: 'button', 'aria-label': `${label}: ${email}` },
  });
  node.addEventListener('click', onClick);
  return node;
}

/** `GET /users` (one page of 200); false when the caller is not an administrator. */
export async function loadUsers() {
  const res = await api('/users?limit=200');
  if (res.status === 401) { session.onExpired(); return false; }
  if (!res.ok) return false;
  const me = (session.me && session.me.email) || session.email;
  const rows = [];
  for (const user of await res.json()) {
    const own = user.email === me;
    const li = make('li', { className: 'user', testid: 'user' });
    li.dataset.email = user.email;
    const states = [user.admin ? 'admin' : '', user.active ? '' : 'deactivated', user.locked ? 'locked' : '', own ? 'you' : '']
      .filter(Boolean);
    const info = make('div', { className: 'user-info' });
    info.append(
      make('span', { className: 'user-name', testid: 'user-name', text: `${user.email}${states.length ? ` · ${states.join(' · ')}` : ''}` }),
      make('span', { className: 'user-usage', testid: 'user-usage', text: usageText(user) }),
    );
    li.append(info);
    const change = (label, body) => button(label, user.email, async () => {
      const answer = await jsonRequest('PATCH', `/users/${encodeURIComponent(user.email)}`, body);
      if (!answer.ok) {
        say(`${label} failed. ${describe(answer.status, await errorBody(answer))}`, 'error');
        return;
      }
      say(`${label}: done for ${user.email}.`, 'ok');
      loadUsers();
    });
    if (!own) {
      li.append(change(user.active ? 'Deactivate' : 'Activate', { active: !user.active }));
      li.append(change(user.admin ? 'Remove admin' : 'Make admin', { admin: !user.admin }));
    }
    if (user.locked) li.append(change('Unlock', { unlock: true }));
    if (!own) li.append(button('Delete', user.email, () => deleteUser(user.email)));
    rows.push(li);
  }
  list.replaceChildren(...rows);
  return true;
}

async function deleteUser(email) {
  const confirmed = await confirmAction({
    title: `Delete the account ${email}?`,
    text: `${email} is signed out at once, and their conversions and stored files are deleted; this cannot be undone.`,
  });
  if (!confirmed) return;
  const res = await api(`/users/${encodeURIComponent(email)}`, { method: 'DELETE' });
  if (res.status === 401) { session.onExpired(); return; }
  if (res.status !== 204) {
    say(`${email} was not deleted. ${describe(res.status, await errorBody(res))}`, 'error');
    return;
  }
  say(`Deleted the account ${email}.`, 'ok');
  loadUsers();
}

document.getElementById('user-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = document.getElementById('new-user-email');
  const password = document.getElementById('new-user-password');
  const res = await jsonRequest('POST', '/users', { email: email.value.trim(), password: password.value });
  if (res.status !== 201) {
    const body = await errorBody(res);
    say(`User not created: ${(body && body.detail) || res.status}.`, 'error');
    return;
  }
  say(`Created ${email.value.trim()}.`, 'ok');
  event.target.reset();
  loadUsers();
});

export function forgetUsers() {
  list.replaceChildren();
}
