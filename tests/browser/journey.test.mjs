// The path one user walks from the front door to signing out, in one test: the page and its
// modules as served, a wrong then a right password, the format choices, an upload followed
// live to done, the download, the player, a share link opened without the token, a reload
// that keeps the session, the storage line, the phone layout, delete (with its confirmation)
// and sign-out. It runs first in the suite (suite.mjs): it expects the user to own nothing
// else, so that deleting its one conversion brings the storage line back to 0 B.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  ARTIFACT_DIR, BASE_URL, EMAIL, FIXTURE, PASSWORD, browser, jobRow, looksLikeMp3, sleep, submitUpload, waitForEnd,
  waitForError,
} from './support.mjs';

test('sign in, upload a video, follow it, download the mp3, see it in the list', { timeout: 240_000 }, async (t) => {
  t.diagnostic(`node ${process.version}, chromium ${browser.version()}`);
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 860 } });
  const page = await context.newPage();

  // Uncaught script errors and CSP violations fail the test; the rest is logged.
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Uncaught/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const liveStatus = [];
  page.on('response', (r) => {
    if (/\/jobs\/[^/]+\/events/.test(r.url())) liveStatus.push(`events → ${r.status()} ${r.headers()['content-type'] || ''}`);
  });

  // ---- the page and its assets
  const res = await page.goto(BASE_URL + '/');
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'], /^text\/html/);
  assert.ok(res.headers().etag, 'index.html has an ETag');
  // The script: ES modules served as they are, revalidated (cheaply, by their ETag).
  const modules = await page.evaluate(() => [...document.querySelectorAll('script[type=module], link[rel=modulepreload]')]
    .map((e) => new URL(e.src || e.href).pathname));
  assert.equal(modules.length, 11, modules.join(', '));
  for (const path of modules) {
    const module = await page.request.get(BASE_URL + path);
    assert.equal(module.status(), 200, path);
    assert.equal(module.headers()['content-type'], 'text/javascript; charset=utf-8', path);
    assert.equal(module.headers()['cache-control'], 'no-cache', path);
    assert.ok(module.headers().etag, `${path} has an ETag`);
  }
  await page.locator('#login-form').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#app-view').isVisible(), false);

  // ---- a wrong password shows a readable error
  await page.fill('#email', EMAIL);
  await page.fill('#password', 'not-the-password');
  await page.click('#login-submit');
  const message = page.locator('[data-testid=message]');
  await waitForError(page);
  assert.match(await message.textContent(), /wrong email or password/i);
  assert.equal(await message.getAttribute('aria-live'), 'polite');
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-login-error.png') });

  // ---- the right one signs in (keyboard: Enter submits the form)
  await page.fill('#password', PASSWORD);
  await page.press('#password', 'Enter');
  await page.locator('#app-view').waitFor({ state: 'visible' });
  assert.equal(await page.locator('[data-testid=user-email]').textContent(), EMAIL);
  assert.ok(await page.evaluate(() => localStorage.getItem('mp3edge.token')), 'the token is kept in localStorage');

  // ---- formats come from GET /formats; choose mp3 at 192 kbps
  await page.waitForFunction(() => [...document.querySelectorAll('#format option')].some((o) => o.value === 'mp3'));
  // Opus takes bitrates only: its VBR choices are disabled, and a VBR choice moves to a bitrate.
  await page.waitForFunction(() => [...document.querySelectorAll('#format option')].some((o) => o.value === 'opus'));
  await page.selectOption('#bitrate', 'vbr:2');
  await page.selectOption('#format', 'opus');
  assert.equal(await page.locator('#bitrate option[value="vbr:2"]').count(), 0, 'no VBR for Opus');
  assert.ok(!(await page.locator('#bitrate').inputValue()).startsWith('vbr:'), 'a bitrate is chosen for Opus');
  await page.selectOption('#format', 'mp3');
  assert.equal(await page.locator('#bitrate option[value="vbr:2"]').count(), 1, 'VBR is back for mp3');
  await page.selectOption('#format', 'mp3');
  await page.selectOption('#bitrate', '192');

  // ---- upload
  await page.setInputFiles('#file-input', FIXTURE);
  assert.match(await page.locator('[data-testid=file-name]').textContent(), new RegExp(basename(FIXTURE).replace('.', '\\.')));
  const { jobId, metadata } = await submitUpload(page);
  assert.deepEqual(metadata, { filename: basename(FIXTURE), filetype: 'video/mp4', format: 'mp3', bitrate: '192' });
  assert.match(jobId, /^[0-9a-f]{32}$/);

  // ---- live status until done
  const row = jobRow(page, jobId);
  await row.waitFor({ state: 'visible' });
  await waitForEnd(page, jobId);
  const status = await row.getAttribute('data-status');
  assert.equal(status, 'done', `job ended ${status}: ${await row.locator('[data-testid=job-error]').textContent()}`);
  assert.match(await message.textContent(), /ready to download/);
  t.diagnostic(`live status: ${liveStatus.join(', ') || 'no event stream requested'}`);
  // The row says how it was encoded, and (fetched once when the stream said done) when it
  // expires, without a reload.
  assert.equal(new URL(page.url()).hash, '#/jobs', 'Convert shows the conversions');
  await page.waitForFunction((id) => / · expires /.test(document.querySelector(`li[data-job-id="${id}"] [data-testid=job-meta]`).textContent), jobId);
  assert.match(await row.locator('[data-testid=job-meta]').textContent(), /^→ MP3 · 192 kbps · .+ · expires /);

  // ---- download
  const downloadButton = row.locator('[data-testid=download]');
  await downloadButton.waitFor({ state: 'visible' });
  const [download] = await Promise.all([page.waitForEvent('download'), downloadButton.click()]);
  const saved = join(ARTIFACT_DIR, 'web-download-' + download.suggestedFilename());
  await download.saveAs(saved);
  assert.match(download.suggestedFilename(), /\.mp3$/);
  const bytes = readFileSync(saved);
  assert.ok(statSync(saved).size > 1000, `the download holds ${bytes.length} bytes`);
  assert.ok(looksLikeMp3(bytes), `the download starts with ${bytes.subarray(0, 4).toString('hex')}`);
  assert.match(await message.textContent(), /Downloading/);

  // ---- the player streams it from the server and plays
  await row.locator('[data-testid=play]').click();
  const audio = row.locator('[data-testid=audio]');
  await audio.waitFor({ state: 'attached' });
  assert.match(await audio.getAttribute('src'), /\/audio\?expires=\d+&sig=[0-9a-f]{64}$/);
  await page.waitForFunction((id) => {
    const a = document.querySelector(`li[data-job-id="${id}"] audio`);
    return a && a.currentTime > 0.2;
  }, jobId, { timeout: 20_000 });
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-done.png'), fullPage: true });

  // ---- a shared link works in a browser that has no token
  await row.locator('[data-testid=share]').click();
  const shareField = row.locator('[data-testid=share-link]');
  await shareField.waitFor({ state: 'visible' });
  const link = await shareField.inputValue();
  assert.ok(link.startsWith(BASE_URL + '/jobs/'), link);
  const stranger = await browser.newContext();
  const shared = await stranger.request.get(link);
  assert.equal(shared.status(), 200);
  assert.ok(looksLikeMp3(await shared.body()), 'the shared link serves the mp3');
  const tampered = await stranger.request.get(link.replace(/sig=./, (m) => (m.endsWith('0') ? 'sig=1' : 'sig=0')));
  assert.equal(tampered.status(), 403);
  await stranger.close();

  // ---- a reload keeps the session, and the job is in the list of past jobs (GET /jobs)
  const jobsLoaded = page.waitForResponse((r) => new URL(r.url()).pathname === '/jobs');
  await page.reload();
  assert.equal((await jobsLoaded).status(), 200);
  await page.locator('#app-view').waitFor({ state: 'visible' });
  const pastRow = jobRow(page, jobId);
  await pastRow.waitFor({ state: 'visible' });
  assert.equal(await pastRow.getAttribute('data-status'), 'done');
  assert.equal(await pastRow.locator('[data-testid=job-name]').textContent(), basename(FIXTURE));
  assert.ok(await pastRow.locator('[data-testid=download]').isVisible());

  // ---- storage: the quota line, the expiry on the row, and delete
  await page.waitForFunction(() => /Storage: .* of .* used/.test(document.getElementById('usage').textContent));
  assert.match(await pastRow.locator('[data-testid=job-meta]').textContent(), /expires /, 'the row says when it expires');
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-usage.png'), fullPage: true });

  // ---- phone-sized screen: nothing wider than the viewport
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone screen`);
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-phone.png'), fullPage: true });

  // ---- delete asks first, naming the file; Cancel sends nothing, Delete removes the row and the job
  await page.setViewportSize({ width: 1200, height: 860 });
  const deletes = [];
  page.on('request', (r) => { if (r.method() === 'DELETE') deletes.push(r.url()); });
  const dialog = page.locator('[data-testid=confirm-dialog]');
  await pastRow.locator('[data-testid=delete]').click();
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await dialog.locator('h2').textContent(), `Delete ${basename(FIXTURE)}?`);
  assert.equal(await dialog.locator('p').textContent(), 'Its audio file, the uploaded video and any shared links go now; this cannot be undone.');
  await dialog.locator('[data-testid=confirm-cancel]').click();
  await dialog.waitFor({ state: 'hidden' });
  await sleep(500);
  assert.deepEqual(deletes, [], 'no DELETE after Cancel');
  assert.ok(await pastRow.isVisible(), 'the row stays after Cancel');
  const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE');
  await pastRow.locator('[data-testid=delete]').click();
  await dialog.locator('[data-testid=confirm-ok]').click();
  assert.equal((await deleted).status(), 204);
  assert.deepEqual(deletes, [`${BASE_URL}/jobs/${jobId}`]);
  await pastRow.waitFor({ state: 'detached' });
  assert.match(await message.textContent(), /Deleted /);
  const gone = await page.evaluate(async (id) => (await fetch(`/jobs/${id}`, {
    headers: { authorization: `Bearer ${localStorage.getItem('mp3edge.token')}` },
  })).status, jobId);
  assert.equal(gone, 404);
  await page.waitForFunction(() => /Storage: 0 B of/.test(document.getElementById('usage').textContent));

  // ---- sign out forgets the token
  await page.click('#sign-out');
  await page.locator('#login-form').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => localStorage.getItem('mp3edge.token')), null);

  assert.deepEqual(problems, []);
});
