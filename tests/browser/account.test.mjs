// The Account view of a user of its own (ACCOUNT_EMAIL, so that its webhook does not reach
// the other tests' jobs): the webhook (refused address, test event, the deliveries of a real
// conversion), saved presets, and API tokens (created, shown once and copied, last use,
// revoked). The webhook test runs first: it expects the account to be empty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACCOUNT_EMAIL, BASE_URL, FIXTURE, PASSWORD, QUOTA_BYTES, WEBHOOK_URL, checkAccessibility, close, convert, mb,
  navigate, open, signIn, sleep, until, waitForError, waitForMessage, waitForStatus,
} from './support.mjs';

test('the account page edits the webhook, sends a test event and shows the last deliveries', { timeout: 180_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page, ACCOUNT_EMAIL, PASSWORD);
  const message = page.locator('[data-testid=message]');
  const result = page.locator('[data-testid=webhook-result]');
  await navigate(page, 'Account');
  assert.equal(await page.inputValue('#webhook-url'), '');
  // The summary is written when GET /users/me answers, which a busy machine may delay.
  const usage = page.locator('[data-testid=account-usage]');
  await until(async () => (await usage.textContent()) !== '', 'the account summary');
  assert.equal(await usage.textContent(), `Signed in as ${ACCOUNT_EMAIL}. Storage: 0 B of ${mb(QUOTA_BYTES)} used.`);

  // No webhook yet: the test event says so (the server's 409).
  await page.click('[data-testid=webhook-test]');
  await page.waitForFunction(() => document.querySelector('[data-testid=webhook-result]').textContent.startsWith('No test event sent. '));
  assert.ok((await result.textContent()).length > 'No test event sent. '.length, await result.textContent());

  // An address the server refuses: its reason is shown.
  await page.fill('#webhook-url', 'http://169.254.169.254/hook');
  await page.click('[data-testid=webhook-save]');
  await waitForError(page);
  assert.match(await message.textContent(), /^Webhook not saved\. The server could not accept that: .+/);

  // A good one is stored on the account.
  await page.fill('#webhook-url', WEBHOOK_URL);
  await page.click('[data-testid=webhook-save]');
  await waitForMessage(page, `Webhook saved: ${WEBHOOK_URL}.`);
  await page.reload();
  await page.locator('#account-view').waitFor({ state: 'visible' });
  await page.waitForFunction((url) => document.getElementById('webhook-url').value === url, WEBHOOK_URL);

  // The test event reaches it, and the page says how it went.
  await page.click('[data-testid=webhook-test]');
  await page.waitForFunction(() => document.querySelector('[data-testid=webhook-result]').textContent.startsWith('Test event '), null, { timeout: 40_000 });
  assert.match(await result.textContent(), new RegExp(`^Test event delivered to ${WEBHOOK_URL.replace(/[.:/]/g, '\\$&')}: HTTP 200 \\(.+\\)\\.$`));

  // A conversion notifies it; the account lists the delivery.
  await navigate(page, 'Convert');
  const { jobId } = await convert(page, FIXTURE);
  await waitForStatus(page, jobId, 'done');
  await navigate(page, 'Account');
  const delivery = page.locator(`li[data-testid=delivery][data-job-id="${jobId}"]`);
  await until(async () => {
    await page.click('[data-testid=deliveries-refresh]');
    await sleep(500);
    return (await delivery.count()) === 1;
  }, 'the delivery of the job');
  assert.equal(await delivery.locator('[data-testid=delivery-status]').textContent(), 'delivered');
  assert.match(await delivery.locator('[data-testid=delivery-meta]').textContent(), new RegExp(`^HTTP 200 · attempt 1 · .+ · ${WEBHOOK_URL.replace(/[.:/]/g, '\\$&')}$`));

  // Removed again.
  await page.fill('#webhook-url', '');
  await page.click('[data-testid=webhook-save]');
  await waitForMessage(page, 'Webhook removed.');
  await close(context, problems);
});

test('presets: the options saved under a name, picked again after a reload, and deleted', { timeout: 60_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page, ACCOUNT_EMAIL, PASSWORD);
  const presets = page.locator('#presets');
  assert.equal(await presets.isVisible(), false, 'no presets yet');
  await page.waitForFunction(() => document.querySelector('#format option[value=flac]'));
  await page.selectOption('#format', 'flac');
  await page.selectOption('#opt-level', '8');
  await page.click('#advanced-toggle');
  await page.selectOption('#opt-normalize', '-16');
  await page.fill('#opt-artist', 'Preset Artist');
  await page.click('#preset-save-toggle');
  await page.fill('#preset-name', 'FLAC archive');
  const saved = page.waitForRequest((r) => r.method() === 'PUT' && new URL(r.url()).pathname.startsWith('/users/me/presets/'));
  await page.click('[data-testid=preset-submit]');
  const request = await saved;
  assert.equal(new URL(request.url()).pathname, '/users/me/presets/FLAC%20archive');
  assert.deepEqual(request.postDataJSON(), { params: { format: 'flac', level: '8', normalize: '-16', artist: 'Preset Artist' } });
  await waitForMessage(page, 'Saved the preset FLAC archive.');
  await presets.waitFor({ state: 'visible' });
  assert.equal(await page.inputValue('#preset'), 'FLAC archive');

  // Kept on the account: after a reload (the form back to its defaults), picking it sets them all.
  await page.reload();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  await presets.waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#format option[value=flac]'));
  assert.equal(await page.inputValue('#format'), 'mp3');
  await page.selectOption('#preset', 'FLAC archive');
  assert.equal(await page.inputValue('#format'), 'flac');
  assert.equal(await page.inputValue('#opt-level'), '8');
  assert.equal(await page.inputValue('#opt-normalize'), '-16');
  assert.equal(await page.inputValue('#opt-artist'), 'Preset Artist');
  assert.equal(await page.inputValue('#opt-title'), '');

  // Deleting asks first; Cancel keeps it.
  const deletes = [];
  page.on('request', (r) => { if (r.method() === 'DELETE') deletes.push(new URL(r.url()).pathname); });
  const dialog = page.locator('[data-testid=confirm-dialog]');
  await page.click('[data-testid=preset-delete]');
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await dialog.locator('h2').textContent(), 'Delete the preset FLAC archive?');
  await dialog.locator('[data-testid=confirm-cancel]').click();
  await dialog.waitFor({ state: 'hidden' });
  assert.deepEqual(deletes, []);
  await page.click('[data-testid=preset-delete]');
  await dialog.locator('[data-testid=confirm-ok]').click();
  await waitForMessage(page, 'Preset FLAC archive deleted.');
  assert.deepEqual(deletes, ['/users/me/presets/FLAC%20archive']);
  await presets.waitFor({ state: 'hidden' });
  await close(context, problems);
});

test('API tokens: created with a name and an expiry, shown once and copied, listed with their last use, revoked', { timeout: 90_000 }, async () => {
  // bypassCSP: axe-core is injected into the page for the accessibility check.
  const { context, page, problems } = await open({ bypassCSP: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE_URL });
  await signIn(page, ACCOUNT_EMAIL, PASSWORD);
  await navigate(page, 'Account');
  const message = page.locator('[data-testid=message]');
  const tokens = page.locator('[data-testid=token]');
  await page.locator('[data-testid=tokens-empty]').waitFor({ state: 'visible' });
  assert.equal(await tokens.count(), 0);

  // A name the server refuses: its reason is shown, nothing is created.
  await page.evaluate(() => { document.getElementById('token-name').value = 'bad\u202ename'; });
  await page.click('[data-testid=token-create]');
  await waitForError(page);
  assert.equal(await message.textContent(), 'No token created. The server could not accept that: the name contains the control or formatting character U+202E.');
  assert.equal(await tokens.count(), 0);

  await page.fill('#token-name', 'Nightly backup');
  await page.selectOption('#token-expiry', '30');
  const created = page.waitForResponse((r) => new URL(r.url()).pathname === '/users/me/tokens' && r.request().method() === 'POST');
  await page.click('[data-testid=token-create]');
  const res = await created;
  assert.equal(res.status(), 201);
  assert.deepEqual(res.request().postDataJSON(), { name: 'Nightly backup', expires_in_days: 30 });
  const secret = (await res.json()).token;
  assert.match(secret, /^mp3e_[A-Za-z0-9_-]{43}$/);
  await page.locator('[data-testid=token-secret-box]').waitFor({ state: 'visible' });
  assert.equal(await page.inputValue('#token-secret'), secret);
  await waitForMessage(page, 'Token Nightly backup created. Copy it now: it is not shown again.');
  await page.click('[data-testid=token-copy]');
  await waitForMessage(page, 'Token copied.');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  const row = tokens.filter({ hasText: 'Nightly backup' });
  await row.waitFor();
  assert.match(await row.locator('[data-testid=token-meta]').textContent(), /^created .+ · expires .+ · never used$/);

  // A script uses it; the secret is gone from the page after a reload, and the list says when
  // it was last used.
  const withToken = async () => (await fetch(`${BASE_URL}/jobs`, { headers: { authorization: `Bearer ${secret}` } })).status;
  assert.equal(await withToken(), 200);
  await page.reload();
  await page.locator('#account-view').waitFor({ state: 'visible' });
  await row.waitFor();
  assert.equal(await page.locator('[data-testid=token-secret-box]').isVisible(), false);
  assert.equal(await page.inputValue('#token-secret'), '');
  assert.equal(await page.content().then((html) => html.includes(secret)), false, 'the secret is nowhere in the page');
  assert.match(await row.locator('[data-testid=token-meta]').textContent(), /^created .+ · expires .+ · last used .+$/);
  await checkAccessibility(page, 'the account view with a token');

  // Revoking asks first; Cancel keeps it, Revoke ends it at once.
  const dialog = page.locator('[data-testid=confirm-dialog]');
  await row.getByRole('button', { name: 'Revoke: Nightly backup' }).click();
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await dialog.locator('h2').textContent(), 'Revoke the token Nightly backup?');
  await dialog.locator('[data-testid=confirm-cancel]').click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await withToken(), 200);
  const revoked = page.waitForResponse((r) => r.request().method() === 'DELETE');
  await row.getByRole('button', { name: 'Revoke: Nightly backup' }).click();
  await dialog.locator('[data-testid=confirm-ok]').click();
  assert.equal((await revoked).status(), 204);
  await row.waitFor({ state: 'detached' });
  assert.equal(await message.textContent(), 'Token Nightly backup revoked.');
  await page.locator('[data-testid=tokens-empty]').waitFor({ state: 'visible' });
  assert.equal(await withToken(), 401);
  await close(context, problems);
});
