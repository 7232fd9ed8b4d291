/**
 * Personal API tokens on the Account view (`/users/me/tokens`): created with a name and an
 * expiry, the secret shown once (the server keeps only its hash) with a copy button, listed
 * with when each was last used, and revoked after a confirmation.
 */

import { api, describe, errorBody, jsonRequest, session } from './api.js';
import { confirmAction, formatDate, make, say } from './ui.js';

const form = document.getElementById('token-form');
const nameInput = document.getElementById('token-name');
const expiry = document.getElementById('token-expiry');
const secretBox = document.getElementById('token-secret-box');
const secretField = document.getElementById('token-secret');
const copyButton = document.getElementById('token-copy');
const list = document.getElementById('tokens');
const empty = document.getElementById('tokens-empty');

/** One line about a token: when made, until when, when last used. */
function tokenMeta(token) {
  const expires = token.expires_at == null
    ? 'never expires'
    : `${token.expires_at * 1000 <= Date.now() ? 'expired' : 'expires'} ${formatDate(token.expires_at)}`;
  const used = token.last_used_at == null ? 'never used' : `last used ${formatDate(token.last_used_at)}`;
  return `created ${formatDate(token.created_at)} · ${expires} · ${used}`;
}

function show(tokens) {
  list.replaceChildren(...tokens.map((token) => {
    const li = make('li', { className: 'delivery', testid: 'token' });
    li.dataset.tokenId = token.id;
    const revoke = make('button', {
      className: 'secondary small', testid: 'token-revoke', text: 'Revoke', attrs: { type: 'button', 'aria-label': `Revoke: ${token.name}` },
    });
    revoke.addEventListener('click', () => revokeToken(token, revoke));
    li.append(
      make('span', { className: 'delivery-name', testid: 'token-name', text: token.name }),
      revoke,
      make('span', { className: 'delivery-meta', testid: 'token-meta', text: tokenMeta(token) }),
    );
    return li;
  }));
  empty.hidden = tokens.length > 0;
}

/** `GET /users/me/tokens` into the list. */
export async function loadTokens() {
  try {
    const res = await api('/users/me/tokens');
    if (res.status === 401) { session.onExpired(); return; }
    if (!res.ok) return;
    show(await res.json());
  } catch { /* the list stays as it was until the next visit */ }
}

async function revokeToken(token, button) {
  const confirmed = await confirmAction({
    title: `Revoke the token ${token.name}?`,
    text: 'Scripts and programs using it are refused from now on. This cannot be undone.',
    action: 'Revoke',
  });
  if (!confirmed) return;
  button.disabled = true;
  try {
    const res = await api(`/users/me/tokens/${encodeURIComponent(token.id)}`, { method: 'DELETE' });
    if (res.status === 401) { session.onExpired(); return; }
    if (res.status !== 204 && res.status !== 404) {
      say(`The token was not revoked. ${describe(res.status, await errorBody(res))}`, 'error');
      return;
    }
    say(`Token ${token.name} revoked.`, 'ok');
    await loadTokens();
  } catch {
    say(`The token was not revoked. ${describe(0)}`, 'error');
  } finally {
    button.disabled = false;
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  if (!name) return;
  const body = { name };
  if (expiry.value) body.expires_in_days = Number(expiry.value);
  let res;
  try {
    res = await jsonRequest('POST', '/users/me/tokens', body);
  } catch {
    say(`No token created. ${describe(0)}`, 'error');
    return;
  }
  if (res.status === 401) { session.onExpired(); return; }
  if (res.status !== 201) {
    say(`No token created. ${describe(res.status, await errorBody(res))}`, 'error');
    return;
  }
  const created = await res.json();
  secretField.value = created.token;
  secretBox.hidden = false;
  secretField.select();
  nameInput.value = '';
  say(`Token ${created.name} created. Copy it now: it is not shown again.`, 'ok');
  await loadTokens();
});

copyButton.addEventListener('click', async () => {
  secretField.select();
  try {
    await navigator.clipboard.writeText(secretField.value);
    say('Token copied.', 'ok');
  } catch {
    say('Copy the token from the field (it is selected).', 'info');
  }
});

/** Signed out: neither the secret nor the list stays on the page. */
export function forgetTokens() {
  secretField.value = '';
  secretBox.hidden = true;
  list.replaceChildren();
  empty.hidden = false;
}
