// Uploads and imports from the Convert view: several files queued with one cancelled, an
// upload resumed from the server's offset after a lost connection and after a reload, a link
// imported by the server (and an internal one refused), files dropped at once, and files the
// storage quota cannot hold refused with the reason and what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ARTIFACT_DIR, BIG_FIXTURE, FIXTURE, IMPORT_URL, QUOTA_BYTES, close, convert, jobNames, jobRow, mb, navigate, open,
  signIn, smallFile, sleep, uploadMetadata, until, waitForError, waitForJobNames, waitForStatus,
} from './support.mjs';

test('several files go up one after the other, each with its progress, and one can be cancelled', { timeout: 180_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page);
  await page.waitForFunction(() => /per file/.test(document.getElementById('size-limit').textContent));
  // Uploads are slowed down so the queue can be seen and the last one cancelled.
  await page.route('**/uploads', async (route) => {
    await sleep(2000);
    await route.continue();
  });
  const bytes = readFileSync(FIXTURE);
  const files = ['one.mp4', 'two.mp4', 'three.mp4'].map((name) => ({ name, mimeType: 'video/mp4', buffer: bytes }));
  await page.setInputFiles('#file-input', files);
  assert.match(await page.locator('[data-testid=file-name]').textContent(), /3 files/);
  await page.click('#upload-submit');
  const items = page.locator('[data-testid=upload-item]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=upload-item]').length === 3);
  // The first is on its way (held 2 s), the third still waits: cancel it.
  await items.nth(2).locator('[data-testid=upload-cancel]').click();
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-queue.png') });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=upload-item]').length === 0, null, { timeout: 60_000 });
  await waitForJobNames(page, ['one.mp4', 'two.mp4']);
  const names = await jobNames(page);
  assert.ok(names.includes('one.mp4') && names.includes('two.mp4') && !names.includes('three.mp4'), names.join(', '));
  await close(context, problems);
});

/** The offsets of the page's appends (`PATCH /uploads/{id}`), in order. */
function watchAppends(page) {
  const offsets = [];
  page.on('request', (r) => {
    if (r.method() === 'PATCH' && new URL(r.url()).pathname.startsWith('/uploads/')) offsets.push(Number(r.headers()['upload-offset']));
  });
  return offsets;
}

/** Slows the page's uploads to `bytesPerSecond` (Chromium's network emulation). */
async function throttleUploads(context, page, bytesPerSecond) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
}

/** Waits until the upload's progress bar reaches `percent`. */
async function waitForProgress(page, percent) {
  await page.waitForFunction((p) => Number(document.getElementById('upload-progress').value) >= p, percent, { timeout: 60_000 });
}

test('an upload that loses its connection, or the page, goes on from where it stopped', { timeout: 240_000 }, async () => {
  const { context, page, problems } = await open();
  const size = statSync(BIG_FIXTURE).size;
  await signIn(page);
  const appends = watchAppends(page);
  await throttleUploads(context, page, 1_500_000);

  // ---- the network drops half-way, then comes back: the upload resumes by itself.
  const { jobId } = await convert(page, BIG_FIXTURE);
  await waitForProgress(page, 25);
  await context.setOffline(true);
  await sleep(2500);
  await context.setOffline(false);
  await waitForStatus(page, jobId, 'done');
  assert.equal(appends[0], 0, `appends: ${appends}`);
  const resumedAt = appends.find((offset) => offset > 0);
  assert.ok(resumedAt >= size / 5, `the upload went on from the server's offset, not from 0: ${appends}`);
  assert.ok(!appends.slice(1).includes(0), `it never started over: ${appends}`);

  // ---- the page is reloaded half-way: it says so, and the same file goes on from there.
  const again = join(ARTIFACT_DIR, 'again.mp4');
  writeFileSync(again, readFileSync(BIG_FIXTURE));
  await throttleUploads(context, page, 1_500_000);
  await navigate(page, 'Convert');
  const { jobId: secondId } = await convert(page, again);
  await waitForProgress(page, 25);
  await page.reload();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  // The reload stays on the conversions (#/jobs), where the job waits for the rest of its file.
  const row = jobRow(page, secondId);
  await row.waitFor({ state: 'visible' });
  assert.equal(await row.getAttribute('data-status'), 'uploading');
  await navigate(page, 'Convert');
  const unfinished = page.locator('[data-testid=unfinished]');
  await unfinished.waitFor({ state: 'visible' });
  assert.match(await unfinished.textContent(), /Unfinished upload: again\.mp4\. Choose the same file again/);
  appends.length = 0;
  await page.setInputFiles('#file-input', again);
  await page.click('#upload-submit');
  await waitForStatus(page, secondId, 'done');
  assert.ok(appends.length > 0 && appends[0] >= size / 5, `after the reload, the first append went on from the server's offset: ${appends}`);
  assert.equal(await page.evaluate(() => document.getElementById('unfinished').hidden), true, 'nothing unfinished any more');
  await close(context, problems);
});

test('a link is imported by the server and converts; a refused one says why', { timeout: 180_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page);
  await page.selectOption('#format', 'mp3');
  await page.fill('#import-url', IMPORT_URL);
  const imported = page.waitForResponse((r) => r.url().includes('/upload?') && r.request().method() === 'POST');
  await page.click('#upload-submit');
  const res = await imported;
  assert.equal(res.status(), 202, await res.text());
  assert.equal(new URL(res.url()).searchParams.get('url'), IMPORT_URL);
  const { job_id: jobId } = await res.json();
  const row = jobRow(page, jobId);
  assert.equal(await row.locator('[data-testid=job-name]').textContent(), 'talk.mp4');
  await waitForStatus(page, jobId, 'done');
  await navigate(page, 'Convert');
  assert.equal(await page.inputValue('#import-url'), '', 'the link field is cleared for the next one');
  // A link to an internal address is refused at once, with the reason.
  await page.fill('#import-url', 'http://169.254.169.254/latest/meta-data/');
  await page.click('#upload-submit');
  await page.waitForFunction(() => /internal address/.test(document.querySelector('[data-testid=message]').textContent));
  assert.match(await page.locator('[data-testid=message]').textContent(),
    /The import of http:\/\/169\.254\.169\.254\/latest\/meta-data\/ failed\. The server could not accept that: 169\.254\.169\.254 is a loopback, private or otherwise internal address/);
  await close(context, problems);
});

test('dropping several files keeps and uploads all of them', { timeout: 120_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page);
  const created = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname === '/uploads' && r.request().method() === 'POST') created.push(uploadMetadata(r.request()).filename);
  });
  // Two files dropped at once, through a DataTransfer as the browser makes for a real drop.
  await page.evaluate((base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'first.mp4', { type: 'video/mp4' }));
    dt.items.add(new File([bytes], 'second.mp4', { type: 'video/mp4' }));
    const zone = document.getElementById('drop-zone');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
    }
  }, readFileSync(FIXTURE).toString('base64'));
  assert.deepEqual(await page.evaluate(() => [...document.getElementById('file-input').files].map((f) => f.name)), ['first.mp4', 'second.mp4']);
  assert.match(await page.locator('[data-testid=file-name]').textContent(), /^2 files · /);
  await page.click('#upload-submit');
  await until(() => created.length === 2, 'two uploads');
  assert.deepEqual(created, ['first.mp4', 'second.mp4']);
  await waitForJobNames(page, ['first.mp4', 'second.mp4']);
  await close(context, problems);
});

test('a file the quota cannot hold is refused before its upload, saying why and what to do', { timeout: 90_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page);
  const message = page.locator('[data-testid=message]');
  const creations = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/uploads' && r.method() === 'POST') creations.push(r.url()); });

  // Larger than the whole quota (a sparse file: nothing of it is read).
  const huge = join(ARTIFACT_DIR, 'huge.mp4');
  writeFileSync(huge, '');
  truncateSync(huge, QUOTA_BYTES + 10 * 1024 * 1024);
  await page.setInputFiles('#file-input', huge);
  await page.click('#upload-submit');
  await waitForError(page);
  assert.equal(await message.textContent(),
    `huge.mp4 (${mb(QUOTA_BYTES + 10 * 1024 * 1024)}) is larger than your whole storage quota (${mb(QUOTA_BYTES)}), so it cannot be uploaded. `
    + 'Trim or compress it first, or ask your administrator for a larger quota.');
  assert.deepEqual(creations, [], 'nothing was sent');
  assert.equal(new URL(page.url()).hash, '', 'the page stays on the form');
  // Sparse, but an artifact copier would write it out in full.
  unlinkSync(huge);

  // Not enough room left: the account (as GET /users/me says) is nearly full.
  let full = false;
  await page.route((url) => url.pathname === '/users/me', async (route) => {
    const response = await route.fetch();
    const me = await response.json();
    if (full) me.used_bytes = me.quota_bytes - 1024 * 1024;
    await route.fulfill({ response, json: me });
  });
  full = true;
  await page.setInputFiles('#file-input', smallFile('room.mp4', 3 * 1024 * 1024));
  await page.click('#upload-submit');
  await page.waitForFunction(() => document.getElementById('message').textContent.startsWith('room.mp4'));
  const roomLeft = (name) => `${name} (3 MB) does not fit in the 1 MB left of your ${mb(QUOTA_BYTES)} storage quota `
    + `(${mb(QUOTA_BYTES - 1024 * 1024)} in use). Delete conversions you no longer need, or wait for them to expire, then try again.`;
  assert.equal(await message.textContent(), roomLeft('room.mp4'));
  assert.deepEqual(creations, [], 'nothing was sent');

  // The server refuses one the page let through (the account filled up meanwhile): its 413 is
  // said with the account's fresh numbers.
  full = false;
  await page.route((url) => url.pathname === '/uploads', (route) => {
    full = true;
    return route.fulfill({
      status: 413, contentType: 'application/json',
      body: JSON.stringify({ error: 'quota_exceeded', detail: 'this upload would take you past your storage quota' }),
    });
  });
  await page.setInputFiles('#file-input', smallFile('late.mp4', 3 * 1024 * 1024));
  await page.click('#upload-submit');
  await page.waitForFunction(() => document.getElementById('message').textContent.startsWith('late.mp4'));
  assert.equal(await message.textContent(), roomLeft('late.mp4'));
  await close(context, problems);
});
