// The administrator's Users view (create, make admin, deactivate, activate, unlock after
// failed log-ins, delete with its confirmation, the own row that cannot be locked out), sign-out
// from one tab ending the session in every tab and on the server, and a user changing their
// password (the page goes on with the new session, the old password stops working).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, ARTIFACT_DIR, BASE_URL, QUOTA_BYTES, checkAccessibility, close, mb, navigate, open,
  signIn, sleep,
} from './support.mjs';

/** Creates a user through the Users view's form; returns their row once it shows. */
async function createUser(page, email, password) {
  await page.fill('#new-user-email', email);
  await page.fill('#new-user-password', password);
  await page.click('[data-testid=user-create]');
  const row = page.locator(`li[data-testid=user][data-email="${email}"]`);
  await row.waitFor({ state: 'visible' });
  return row;
}

/** The status of `POST /login` with these credentials, sent from the page. */
function logIn(page, email, password) {
  return page.evaluate(async ([e, p]) => (await fetch('/login', {
    // No credentials mode: a 401 with WWW-Authenticate would otherwise open the browser's prompt.
    method: 'POST', headers: { authorization: `Basic ${btoa(`${e}:${p}`)}` }, credentials: 'omit',
  })).status, [email, password]);
}

/** Waits until the user's row names them as `text` (the address and its marks). */
async function waitForUserName(page, email, text) {
  await page.waitForFunction(([e, t]) => document.querySelector(`li[data-email="${e}"] [data-testid=user-name]`)?.textContent === t, [email, text]);
}

test('an admin manages users, a user changes their password, and sign-out reaches every tab', { timeout: 120_000 }, async () => {
  const { context, page, problems } = await open({ bypassCSP: true });
  await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  const message = page.locator('[data-testid=message]');

  // The admin's users page, from the navigation: create, make admin, deactivate, activate.
  await navigate(page, 'Users');
  assert.equal(new URL(page.url()).hash, '#/users');
  const email = `panel${Date.now()}@example.com`;
  const row = await createUser(page, email, 'first-password-1');
  const name = row.locator('[data-testid=user-name]');
  assert.equal(await name.textContent(), email);
  // Usage against the quota, per user.
  assert.equal(await row.locator('[data-testid=user-usage]').textContent(), `0 B of ${mb(QUOTA_BYTES)} used`);
  await row.getByRole('button', { name: `Make admin: ${email}` }).click();
  await page.waitForFunction((e) => document.querySelector(`li[data-email="${e}"] [data-testid=user-name]`)?.textContent.endsWith(' · admin'), email);
  await row.getByRole('button', { name: `Deactivate: ${email}` }).click();
  await waitForUserName(page, email, `${email} · admin · deactivated`);
  await row.getByRole('button', { name: `Activate: ${email}` }).click();
  await waitForUserName(page, email, `${email} · admin`);

  // The administrator's own row: no way to lock themselves out.
  const own = page.locator(`li[data-testid=user][data-email="${ADMIN_EMAIL}"]`);
  assert.equal(await own.locator('[data-testid=user-name]').textContent(), `${ADMIN_EMAIL} · admin · you`);
  assert.deepEqual(await own.getByRole('button').allTextContents(), [], 'no Deactivate, Remove admin or Delete on the own row');

  // Unlock only for a locked account: five wrong passwords lock this one.
  assert.equal(await row.getByRole('button', { name: `Unlock: ${email}` }).count(), 0, 'not locked: no Unlock');
  for (let i = 0; i < 5; i += 1) {
    assert.equal(await logIn(page, email, `wrong-password-${Math.random()}`), 401);
  }
  await navigate(page, 'Convert');
  await navigate(page, 'Users');
  await waitForUserName(page, email, `${email} · admin · locked`);
  await row.getByRole('button', { name: `Unlock: ${email}` }).click();
  await waitForUserName(page, email, `${email} · admin`);
  assert.equal(await row.getByRole('button', { name: `Unlock: ${email}` }).count(), 0, 'unlocked: no Unlock');
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-users.png'), fullPage: true });

  // Deleting a user asks first, naming the address; Cancel sends nothing.
  const doomed = `gone${Date.now()}@example.com`;
  const doomedRow = await createUser(page, doomed, 'doomed-password-1');
  const deletes = [];
  page.on('request', (r) => { if (r.method() === 'DELETE') deletes.push(r.url()); });
  const dialog = page.locator('[data-testid=confirm-dialog]');
  await doomedRow.getByRole('button', { name: `Delete: ${doomed}` }).click();
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await dialog.locator('h2').textContent(), `Delete the account ${doomed}?`);
  await checkAccessibility(page, 'the confirmation dialog');
  await dialog.locator('[data-testid=confirm-cancel]').click();
  await dialog.waitFor({ state: 'hidden' });
  await sleep(300);
  assert.deepEqual(deletes, []);
  const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE');
  await doomedRow.getByRole('button', { name: `Delete: ${doomed}` }).click();
  await dialog.locator('[data-testid=confirm-ok]').click();
  assert.equal((await deleted).status(), 204);
  assert.deepEqual(deletes, [`${BASE_URL}/users/${encodeURIComponent(doomed)}`]);
  await doomedRow.waitFor({ state: 'detached' });
  assert.equal(await message.textContent(), `Deleted the account ${doomed}.`);
  await checkAccessibility(page, 'the users view');

  // A second tab shares the session; signing out in one signs out both, and the server ends
  // the session (`POST /logout`): a copy of the token opens nothing.
  const second = await context.newPage();
  await second.goto(BASE_URL + '/');
  await second.locator('#app-view').waitFor({ state: 'visible' });
  const adminToken = await page.evaluate(() => localStorage.getItem('mp3edge.token'));
  const loggedOut = page.waitForResponse((r) => new URL(r.url()).pathname === '/logout');
  await page.click('#sign-out');
  const logout = await loggedOut;
  assert.equal(logout.status(), 204);
  assert.equal(logout.request().method(), 'POST');
  assert.equal(logout.request().headers().authorization, `Bearer ${adminToken}`);
  await second.locator('#login-form').waitFor({ state: 'visible' });
  assert.equal((await fetch(`${BASE_URL}/users/me`, { headers: { authorization: `Bearer ${adminToken}` } })).status, 401);

  // The new user changes their password; the old one stops working.
  await signIn(page, email, 'first-password-1');
  await navigate(page, 'Account');
  await page.fill('#current-password', 'wrong-password-9');
  await page.fill('#new-password', 'second-password-2');
  await page.click('[data-testid=password-submit]');
  await page.waitForFunction(() => /not changed/.test(document.getElementById('message').textContent));
  await page.fill('#current-password', 'first-password-1');
  await page.fill('#new-password', 'second-password-2');
  const before = await page.evaluate(() => localStorage.getItem('mp3edge.token'));
  await page.click('[data-testid=password-submit]');
  await page.waitForFunction(() => /has been changed/.test(document.getElementById('message').textContent));
  // The session the change was made with has ended; the page goes on with the new one.
  const after = await page.evaluate(() => localStorage.getItem('mp3edge.token'));
  assert.notEqual(after, before);
  const meWith = async (token) => (await fetch(`${BASE_URL}/users/me`, { headers: { authorization: `Bearer ${token}` } })).status;
  assert.equal(await meWith(before), 401);
  assert.equal(await meWith(after), 200);
  await navigate(page, 'Conversions');
  await navigate(page, 'Account');
  assert.equal(await page.locator('#app-view').isVisible(), true, 'still signed in');
  assert.equal(await page.locator('#nav').getByRole('link', { name: 'Users' }).isVisible(), true, 'made admin above');
  assert.equal(await logIn(page, email, 'first-password-1'), 401);
  assert.equal(await logIn(page, email, 'second-password-2'), 200);
  assert.match(await message.textContent(), /changed/);
  await close(context, problems);
});
