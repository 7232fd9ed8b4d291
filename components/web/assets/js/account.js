/**
 * The user's account: storage used against the quota (also shown under the upload form), the
 * webhook (`default_callback`) with a test event and the last deliveries to it from recent
 * conversions, and the password (its change answers a new session token, which the page
 * goes on with: every earlier one has ended). API tokens are `tokens.js`'s.
 */

import { api, describe, errorBody, jsonRequest, loadMe, session, setToken } from './api.js';
import { formatDate, formatSize, make, say } from './ui.js';

const usage = document.getElementById('usage');
const sizeLimit = document.getElementById('size-limit');
const accountUsage = document.getElementById('account-usage');
const webhookForm = document.getElementById('webhook-form');
const webhookUrl = document.getElementById('webhook-url');
const webhookTest = document.getElementById('webhook-test');
const webhookResult = document.getElementById('webhook-result');
const deliveries = document.getElementById('deliveries');
const deliveriesEmpty = document.getElementById('deliveries-empty');
/** How long a test event is waited for, and how often its outcome is asked. */
const TEST_WAIT_MS = 30_000;
const TEST_POLL_MS = 1000;

function storageText(me) {
  return me.quota_bytes
    ? `Storage: ${formatSize(me.used_bytes)} of ${formatSize(me.quota_bytes)} used`
    : `Storage: ${formatSize(me.used_bytes)} used`;
}

/** `GET /users/me` again, and the storage lines with it. */
export async function refreshUsage() {
  const me = await loadMe();
  if (!me || typeof me.used_bytes !== 'number') return me;
  usage.textContent = storageText(me);
  usage.hidden = false;
  if (me.max_upload_bytes) sizeLimit.textContent = `Up to ${formatSize(me.max_upload_bytes)} per file; several files at once are fine.`;
  accountUsage.textContent = `Signed in as ${me.email}. ${storageText(me)}.`;
  return me;
}

/** The Account view is shown: fresh numbers, the webhook as stored, the last deliveries. */
export async function showAccount() {
  const me = await refreshUsage();
  if (me && document.activeElement !== webhookUrl) webhookUrl.value = me.default_callback || '';
  // The last test event's outcome, if one was sent (and none is being waited for here).
  if (me && me.callback_test && me.callback_test.at != null && !webhookTest.disabled) webhookResult.textContent = testOutcome(me.callback_test);
  loadDeliveries();
}

// ------------------------------------------------------------------ webhook

webhookForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const url = webhookUrl.value.trim();
  let res;
  try {
    res = await jsonRequest('PUT', '/users/me', { default_callback: url || null });
  } catch {
    say(`Webhook not saved. ${describe(0)}`, 'error');
    return;
  }
  if (res.status === 401) { session.onExpired(); return; }
  if (!res.ok) {
    say(`Webhook not saved. ${describe(res.status, await errorBody(res))}`, 'error');
    return;
  }
  session.me = await res.json();
  webhookUrl.value = session.me.default_callback || '';
  webhookResult.textContent = '';
  say(url ? `Webhook saved: ${url}.` : 'Webhook removed.', 'ok');
});

/** What a finished test (`callback_test` of `GET /users/me`) came to, in words. */
function testOutcome(test) {
  const when = formatDate(test.at);
  return test.ok
    ? `Test event delivered to ${test.target}: ${test.detail || 'accepted'} (${when}).`
    : `Test event to ${test.target} failed: ${test.detail || 'no answer'} (${when}).`;
}

webhookTest.addEventListener('click', async () => {
  webhookTest.disabled = true;
  try {
    const res = await api('/users/me/callback/test', { method: 'POST' });
    if (res.status === 401) { session.onExpired(); return; }
    if (res.status !== 202) {
      webhookResult.textContent = `No test event sent. ${describe(res.status, await errorBody(res))}`;
      return;
    }
    const { requested_at: requestedAt, target } = await res.json();
    webhookResult.textContent = `Sending a test event to ${target}…`;
    const until = Date.now() + TEST_WAIT_MS;
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, TEST_POLL_MS));
      const me = await loadMe();
      const test = me && me.callback_test;
      if (test && test.requested_at === requestedAt && test.at != null) {
        webhookResult.textContent = testOutcome(test);
        return;
      }
    }
    webhookResult.textContent = `No outcome yet for the test event to ${target}: no worker has sent it within ${TEST_WAIT_MS / 1000} s.`;
  } catch {
    webhookResult.textContent = `No test event sent. ${describe(0)}`;
  } finally {
    webhookTest.disabled = false;
  }
});

// ------------------------------------------------------------------ deliveries

/** The last webhook attempt of each recent job that had one: where, how it went, when. */
export async function loadDeliveries() {
  let jobs;
  try {
    const res = await api('/jobs?limit=50');
    if (res.status === 401) { session.onExpired(); return; }
    if (!res.ok) return;
    jobs = await res.json();
  } catch {
    return;
  }
  const rows = [];
  for (const job of jobs) {
    const attempts = (job.notifications || []).filter((n) => n.channel === 'webhook');
    if (!attempts.length) continue;
    const last = attempts.reduce((a, b) => (b.at >= a.at ? b : a));
    const li = make('li', { className: 'delivery', testid: 'delivery' });
    li.dataset.jobId = job.id;
    const state = make('span', {
      className: 'badge', testid: 'delivery-status', text: last.ok ? 'delivered' : 'failed',
    });
    state.dataset.status = last.ok ? 'done' : 'failed';
    li.append(
      make('span', { className: 'delivery-name', text: job.source_name || job.id }),
      state,
      make('span', {
        className: 'delivery-meta', testid: 'delivery-meta',
        text: `${last.detail} · attempt ${last.attempt} · ${formatDate(last.at)} · ${last.target}`,
      }),
    );
    rows.push(li);
    if (rows.length === 10) break;
  }
  deliveries.replaceChildren(...rows);
  deliveriesEmpty.hidden = rows.length > 0;
}
document.getElementById('deliveries-refresh').addEventListener('click', loadDeliveries);

// ------------------------------------------------------------------ password

document.getElementById('password-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const current = document.getElementById('current-password');
  const next = document.getElementById('new-password');
  try {
    const res = await jsonRequest('PUT', '/users/me/password', { current_password: current.value, new_password: next.value });
    if (res.status === 401) { session.onExpired(); return; }
    if (res.status !== 200) {
      const body = await errorBody(res);
      say(`Password not changed: ${(body && body.detail) || res.status}.`, 'error');
      return;
    }
    // Every earlier session has ended, this page's too: it goes on with the new one.
    const { token } = await res.json();
    setToken(token, session.email);
    event.target.reset();
    say('Your password has been changed. You stay signed in here; other devices are signed out.', 'ok');
  } catch {
    say(`Password not changed. ${describe(0)}`, 'error');
  }
});

/** Signed out: nothing of the account stays on the page. */
export function forgetAccount() {
  usage.hidden = true;
  accountUsage.textContent = '';
  webhookUrl.value = '';
  webhookResult.textContent = '';
  deliveries.replaceChildren();
  deliveriesEmpty.hidden = false;
}
