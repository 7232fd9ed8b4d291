// The web app in a real (headless, Debian) Chromium, against a running platform.
// Started by tests/tests/browser.rs, which provides:
//   BASE_URL      the platform (e.g. http://127.0.0.1:34567)
//   EMAIL         an existing user...
//   PASSWORD      ...and their password
//   FIXTURE       a video file to convert
//   BIG_FIXTURE   a longer one (12.5 MB), for resumed uploads
//   IMPORT_URL    a video on a server the platform may import from
//   WEBHOOK_URL   a webhook receiver the platform may notify (answers 200)
//   ACCOUNT_EMAIL another user (same password), for the account page and presets
//   QUOTA_BYTES   every user's storage quota on this platform
//   ADMIN_EMAIL, ADMIN_PASSWORD  the administrator
//   ARTIFACT_DIR  where screenshots and the downloaded audio go
//   CHROMIUM      (optional) the browser binary, /usr/bin/chromium by default
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
/** axe-core's browser build, injected into the page for the accessibility check. */
const AXE_PATH = require.resolve('axe-core/axe.min.js');

function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (run this through \`cargo test -p e2e-tests --test browser\`)`);
  return value;
}

const BASE_URL = env('BASE_URL');
const EMAIL = env('EMAIL');
const PASSWORD = env('PASSWORD');
const FIXTURE = env('FIXTURE');
const BIG_FIXTURE = env('BIG_FIXTURE');
const IMPORT_URL = env('IMPORT_URL');
const WEBHOOK_URL = env('WEBHOOK_URL');
const ACCOUNT_EMAIL = env('ACCOUNT_EMAIL');
const QUOTA_BYTES = Number(env('QUOTA_BYTES'));
const ADMIN_EMAIL = env('ADMIN_EMAIL');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const ARTIFACT_DIR = env('ARTIFACT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const JOB_TIMEOUT = 120_000;

const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** An MP3 starts with an ID3v2 tag or an MPEG audio frame sync (11 set bits). */
function looksLikeMp3(bytes) {
  const id3 = bytes[0] === 0x49 && bytes[1] === 0x44 && bytes[2] === 0x33;
  const sync = bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0;
  return id3 || sync;
}

let browser;
before(async () => {
  mkdirSync(ARTIFACT_DIR, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
});
after(() => browser?.close());

/**
 * The next upload the page starts (through tus): waits for its creation request's answer and
 * returns the job id (its `Location`) and the options it sent (`Upload-Metadata`, decoded).
 */
async function nextUpload(page) {
  const created = await page.waitForResponse((r) => new URL(r.url()).pathname === '/uploads' && r.request().method() === 'POST');
  assert.equal(created.status(), 201, `the upload's creation answered ${created.status()}: ${await created.text()}`);
  const jobId = created.headers()['location'].split('/').pop();
  const metadata = Object.fromEntries((created.request().headers()['upload-metadata'] || '').split(',').filter(Boolean).map((pair) => {
    const [key, value] = pair.split(' ');
    return [key, value ? Buffer.from(value, 'base64').toString('utf8') : ''];
  }));
  return { jobId, metadata };
}

/** Signs in through the form. */
async function signIn(page, email = EMAIL, password = PASSWORD) {
  await page.goto(BASE_URL + '/');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#login-submit');
  await page.locator('#app-view').waitFor({ state: 'visible' });
}

/** The view each navigation link shows. */
const VIEWS = { Convert: '#convert-view', Conversions: '#jobs-view', Account: '#account-view', Users: '#admin-view' };

/** Goes to a section through the navigation bar, as a user would. */
async function navigate(page, name) {
  await page.locator('#nav').getByRole('link', { name, exact: true }).click();
  await page.locator(VIEWS[name]).waitFor({ state: 'visible' });
}

/** A new page with its uncaught errors collected (`problems`), in a context of its own. */
async function open(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { context, page, problems };
}

/** A small file for tests that stop the upload before it reaches the server. */
function smallFile(name, bytes = 4096) {
  return { name, mimeType: 'video/mp4', buffer: Buffer.alloc(bytes, 1) };
}

/** The options a tus creation request carries (its `Upload-Metadata`, decoded). */
function uploadMetadata(request) {
  return Object.fromEntries((request.headers()['upload-metadata'] || '').split(',').filter(Boolean).map((pair) => {
    const [key, value] = pair.split(' ');
    return [key, value ? Buffer.from(value, 'base64').toString('utf8') : ''];
  }));
}

/**
 * Answers every upload creation (`POST /uploads`) with a 400 instead of the server, recording
 * the options it carried: for tests of what the form sends, without a conversion.
 */
async function refuseUploads(page) {
  const sent = [];
  await page.route((url) => url.pathname === '/uploads', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    sent.push(uploadMetadata(route.request()));
    return route.fulfill({ status: 400, contentType: 'application/json', body: '{"error":"refused","detail":"refused by the test"}' });
  });
  return sent;
}

/** Waits until `check()` is true (polled every 100 ms). */
async function until(check, what, timeout = 30_000) {
  const end = Date.now() + timeout;
  while (!(await check())) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs axe-core in the page: no serious or critical violation in what is shown. */
async function checkAccessibility(page, label) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.addScriptTag({ path: AXE_PATH });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], `${label}: ${violations.join('; ')}`);
}

/** The page's own size format (the quota messages quote sizes). */
function mb(bytes) {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}

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
  await page.waitForFunction(() => document.getElementById('message').classList.contains('error'));
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
  const uploadStarted = nextUpload(page);
  await page.click('#upload-submit');
  const { jobId, metadata } = await uploadStarted;
  assert.deepEqual(metadata, { filename: basename(FIXTURE), filetype: 'video/mp4', format: 'mp3', bitrate: '192' });
  assert.match(jobId, /^[0-9a-f]{32}$/);

  // ---- live status until done
  const row = page.locator(`li[data-testid=job][data-job-id="${jobId}"]`);
  await row.waitFor({ state: 'visible' });
  await page.waitForFunction(
    (id) => ['done', 'failed'].includes(document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status),
    jobId, { timeout: JOB_TIMEOUT, polling: 100 },
  );
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
  const pastRow = page.locator(`li[data-testid=job][data-job-id="${jobId}"]`);
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
  await new Promise((resolve) => setTimeout(resolve, 500));
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

test('live status from Server-Sent Events, and a failed job shows its reason', { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // The gateway's stream, as its contract says, for whichever job asks: named events, JSON data,
  // the end after a final status. No poll must be needed.
  const eventUrls = [];
  await page.route('**/jobs/*/events?*', (route) => {
    const url = new URL(route.request().url());
    eventUrls.push(url);
    const id = url.pathname.split('/')[2];
    const event = (status, extra = {}) =>
      `event: ${status}\ndata: ${JSON.stringify({ job_id: id, status, progress: 0, ...extra })}\n\n`;
    route.fulfill({
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
      body: event('queued') + event('converting', { progress: 40 })
        + event('failed', { progress: 40, error: 'the input has no audio stream' }),
    });
  });
  const polls = [];
  page.on('request', (r) => { if (/\/jobs\/[^/?]+$/.test(new URL(r.url()).pathname)) polls.push(r.url()); });
  // The record, fetched once after the final event: failed for a reason no retry can change.
  const expiresAt = Math.floor(Date.now() / 1000) + 86400;
  await page.route((url) => /^\/jobs\/[0-9a-f]{32}$/.test(url.pathname), (route) => {
    const id = new URL(route.request().url()).pathname.split('/')[2];
    return route.fulfill({
      status: 200, contentType: 'application/json',
      body: JSON.stringify({
        id, status: 'failed', progress: 40, error: 'the input has no audio stream', retryable: false, source_name: 'clip.mp4',
        options: { format: 'mp3', bitrate_kbps: 192, cover: true }, created_at: expiresAt - 86400, expires_at: expiresAt,
        notifications: [],
      }),
    });
  });

  await signIn(page);
  await page.setInputFiles('#file-input', FIXTURE);
  const uploaded = nextUpload(page);
  // Keyboard only from here: after sign-in the drop zone's file input has focus, and Tab walks
  // the link field → format → bitrate → Advanced options → Convert.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'file-input');
  for (const id of ['import-url', 'format', 'bitrate', 'advanced-toggle', 'upload-submit']) {
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), id);
  }
  await page.keyboard.press('Enter');
  const { jobId } = await uploaded;
  const row = page.locator(`li[data-testid=job][data-job-id="${jobId}"]`);
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === 'failed', jobId);
  assert.equal(await row.locator('[data-testid=job-error]').textContent(), 'the input has no audio stream');
  assert.equal(await row.locator('[data-testid=download]').isVisible(), false);
  assert.match(await page.locator('[data-testid=message]').textContent(), /could not be converted: the input has no audio stream/);
  assert.equal(eventUrls.length, 1);
  assert.ok(eventUrls[0].searchParams.get('access_token'), 'the token travels in the query');
  // The event has no expiry: the record is fetched once, and the row says when it goes.
  await page.waitForFunction((id) => / · expires /.test(document.querySelector(`li[data-job-id="${id}"] [data-testid=job-meta]`).textContent), jobId);
  assert.deepEqual(polls, [`${BASE_URL}/jobs/${jobId}`], 'no polling while the event stream works, one fetch at the end');
  // Nothing another run could change: no Retry.
  assert.equal(await row.locator('[data-testid=retry]').isVisible(), false, 'no Retry for a file without audio');
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-failed.png') });
  await context.close();
  assert.deepEqual(problems, []);
});

test('without an event stream, polling GET /jobs/{id} follows the job to done', { timeout: 180_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // An older gateway, or a proxy that buffers event streams: the stream is refused.
  await page.route('**/jobs/*/events?*', (route) => route.fulfill({
    status: 404, contentType: 'application/json', body: '{"error":"not found","detail":"no such route"}',
  }));
  let polls = 0;
  page.on('request', (r) => { if (/\/jobs\/[^/?]+$/.test(new URL(r.url()).pathname)) polls += 1; });

  await signIn(page);
  await page.selectOption('#format', 'wav');
  assert.ok(await page.locator('#bitrate').isDisabled(), 'no bitrate for a lossless format');
  // The advanced options travel as query parameters (empty ones stay out).
  await page.click('#advanced-toggle');
  await page.fill('#opt-start', '0.5');
  await page.fill('#opt-end', '1.5');
  await page.selectOption('#opt-normalize', '-16');
  await page.fill('#opt-title', 'From the page');
  await page.uncheck('#opt-cover');
  await page.setInputFiles('#file-input', FIXTURE);
  const uploaded = nextUpload(page);
  await page.click('#upload-submit');
  const { jobId, metadata } = await uploaded;
  assert.deepEqual(metadata, {
    filename: basename(FIXTURE), filetype: 'video/mp4',
    format: 'wav', start: '0.5', end: '1.5', normalize: '-16', title: 'From the page', cover: 'none',
  });
  // The advanced options are for this batch only: the form is back to its defaults.
  assert.equal(await page.inputValue('#opt-title'), '', 'the title is not kept for the next batch');
  assert.equal(await page.inputValue('#opt-normalize'), '');
  assert.equal(await page.isChecked('#opt-cover'), true);
  assert.equal(await page.inputValue('#format'), 'wav', 'the format, always in view, stays');
  await page.waitForFunction(
    (id) => ['done', 'failed'].includes(document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status),
    jobId, { timeout: JOB_TIMEOUT, polling: 100 },
  );
  const row = page.locator(`li[data-testid=job][data-job-id="${jobId}"]`);
  assert.equal(await row.getAttribute('data-status'), 'done');
  assert.ok(polls >= 1, 'the status was polled');
  assert.match(await row.locator('[data-testid=job-meta]').textContent(), /^→ WAV · 0:00\.5–0:01\.5 · -16 LUFS \(measured -\d+\.\d\) · no cover · /);
  assert.equal(await row.locator('[data-testid=job-tags]').textContent(), 'Title: From the page');
  await context.close();
  assert.deepEqual(problems, []);
});

test('the page follows the system dark mode and says what the service does', { timeout: 60_000 }, async () => {
  const luminance = (rgb) => {
    const [r, g, b] = rgb.match(/\d+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  for (const colorScheme of ['light', 'dark']) {
    const context = await browser.newContext({ colorScheme, viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(BASE_URL + '/');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    assert.match(await page.locator('[data-testid=intro]').textContent(), /Upload a video and get its audio back/);
    const background = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    const text = await page.evaluate(() => getComputedStyle(document.body).color);
    if (colorScheme === 'dark') {
      assert.ok(luminance(background) < 0.2 && luminance(text) > 0.7, `dark: ${background} / ${text}`);
    } else {
      assert.ok(luminance(background) > 0.8 && luminance(text) < 0.3, `light: ${background} / ${text}`);
    }
    await page.screenshot({ path: join(ARTIFACT_DIR, `web-${colorScheme}.png`) });
    await context.close();
  }
});

test('an admin manages users, a user changes their password, and sign-out reaches every tab', { timeout: 120_000 }, async () => {
  const { context, page, problems } = await open({ bypassCSP: true });
  await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  const message = page.locator('[data-testid=message]');

  // The admin's users page, from the navigation: create, make admin, deactivate, activate.
  await navigate(page, 'Users');
  assert.equal(new URL(page.url()).hash, '#/users');
  const email = `panel${Date.now()}@example.com`;
  await page.fill('#new-user-email', email);
  await page.fill('#new-user-password', 'first-password-1');
  await page.click('[data-testid=user-create]');
  const row = page.locator(`li[data-testid=user][data-email="${email}"]`);
  await row.waitFor({ state: 'visible' });
  const name = row.locator('[data-testid=user-name]');
  assert.equal(await name.textContent(), email);
  // Usage against the quota, per user.
  assert.equal(await row.locator('[data-testid=user-usage]').textContent(), `0 B of ${mb(QUOTA_BYTES)} used`);
  await row.getByRole('button', { name: `Make admin: ${email}` }).click();
  await page.waitForFunction((e) => document.querySelector(`li[data-email="${e}"] [data-testid=user-name]`)?.textContent.endsWith(' · admin'), email);
  await row.getByRole('button', { name: `Deactivate: ${email}` }).click();
  await page.waitForFunction((e) => document.querySelector(`li[data-email="${e}"] [data-testid=user-name]`)?.textContent === `${e} · admin · deactivated`, email);
  await row.getByRole('button', { name: `Activate: ${email}` }).click();
  await page.waitForFunction((e) => document.querySelector(`li[data-email="${e}"] [data-testid=user-name]`)?.textContent === `${e} · admin`, email);

  // The administrator's own row: no way to lock themselves out.
  const own = page.locator(`li[data-testid=user][data-email="${ADMIN_EMAIL}"]`);
  assert.equal(await own.locator('[data-testid=user-name]').textContent(), `${ADMIN_EMAIL} · admin · you`);
  assert.deepEqual(await own.getByRole('button').allTextContents(), [], 'no Deactivate, Remove admin or Delete on the own row');

  // Unlock only for a locked account: five wrong passwords lock this one.
  assert.equal(await row.getByRole('button', { name: `Unlock: ${email}` }).count(), 0, 'not locked: no Unlock');
  for (let i = 0; i < 5; i += 1) {
    const status = await page.evaluate(async (e) => (await fetch('/login', {
      method: 'POST', headers: { authorization: `Basic ${btoa(`${e}:wrong-password-${Math.random()}`)}` }, credentials: 'omit',
    })).status, email);
    assert.equal(status, 401);
  }
  await navigate(page, 'Convert');
  await navigate(page, 'Users');
  await page.waitForFunction((e) => document.querySelector(`li[data-email="${e}"] [data-testid=user-name]`)?.textContent === `${e} · admin · locked`, email);
  await row.getByRole('button', { name: `Unlock: ${email}` }).click();
  await page.waitForFunction((e) => document.querySelector(`li[data-email="${e}"] [data-testid=user-name]`)?.textContent === `${e} · admin`, email);
  assert.equal(await row.getByRole('button', { name: `Unlock: ${email}` }).count(), 0, 'unlocked: no Unlock');
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-users.png'), fullPage: true });

  // Deleting a user asks first, naming the address; Cancel sends nothing.
  const doomed = `gone${Date.now()}@example.com`;
  await page.fill('#new-user-email', doomed);
  await page.fill('#new-user-password', 'doomed-password-1');
  await page.click('[data-testid=user-create]');
  const doomedRow = page.locator(`li[data-testid=user][data-email="${doomed}"]`);
  await doomedRow.waitFor({ state: 'visible' });
  const deletes = [];
  page.on('request', (r) => { if (r.method() === 'DELETE') deletes.push(r.url()); });
  const dialog = page.locator('[data-testid=confirm-dialog]');
  await doomedRow.getByRole('button', { name: `Delete: ${doomed}` }).click();
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await dialog.locator('h2').textContent(), `Delete the account ${doomed}?`);
  await checkAccessibility(page, 'the confirmation dialog');
  await dialog.locator('[data-testid=confirm-cancel]').click();
  await dialog.waitFor({ state: 'hidden' });
  await new Promise((resolve) => setTimeout(resolve, 300));
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
  const login = (password) => page.evaluate(async ([e, p]) => (await fetch('/login', {
    // No credentials mode: a 401 with WWW-Authenticate would otherwise open the browser's prompt.
    method: 'POST', headers: { authorization: `Basic ${btoa(`${e}:${p}`)}` }, credentials: 'omit',
  })).status, [email, password]);
  assert.equal(await login('first-password-1'), 401);
  assert.equal(await login('second-password-2'), 200);
  assert.match(await message.textContent(), /changed/);
  await context.close();
  assert.deepEqual(problems, []);
});

test('several files go up one after the other, each with its progress, and one can be cancelled', { timeout: 180_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await signIn(page);
  await page.waitForFunction(() => /per file/.test(document.getElementById('size-limit').textContent));
  // Uploads are slowed down so the queue can be seen and the last one cancelled.
  await page.route('**/uploads', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 2000));
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
  await page.waitForFunction(() => {
    const names = [...document.querySelectorAll('li[data-testid=job] [data-testid=job-name]')].map((e) => e.textContent);
    return names.includes('one.mp4') && names.includes('two.mp4');
  }, null, { timeout: 60_000 });
  const names = await page.locator('li[data-testid=job] [data-testid=job-name]').allTextContents();
  assert.ok(names.includes('one.mp4') && names.includes('two.mp4') && !names.includes('three.mp4'), names.join(', '));
  await context.close();
  assert.deepEqual(problems, []);
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

async function uploadedPercent(page) {
  return Number(await page.locator('#upload-progress').getAttribute('value'));
}

test('an upload that loses its connection, or the page, goes on from where it stopped', { timeout: 240_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const size = statSync(BIG_FIXTURE).size;
  await signIn(page);
  const appends = watchAppends(page);
  await throttleUploads(context, page, 1_500_000);

  // ---- the network drops half-way, then comes back: the upload resumes by itself.
  await page.setInputFiles('#file-input', BIG_FIXTURE);
  const first = nextUpload(page);
  await page.click('#upload-submit');
  const { jobId } = await first;
  await page.waitForFunction(() => Number(document.getElementById('upload-progress').value) >= 25, null, { timeout: 60_000 });
  await context.setOffline(true);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  await context.setOffline(false);
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === 'done', jobId, { timeout: JOB_TIMEOUT });
  assert.equal(appends[0], 0, `appends: ${appends}`);
  const resumedAt = appends.find((offset) => offset > 0);
  assert.ok(resumedAt >= size / 5, `the upload went on from the server's offset, not from 0: ${appends}`);
  assert.ok(!appends.slice(1).includes(0), `it never started over: ${appends}`);

  // ---- the page is reloaded half-way: it says so, and the same file goes on from there.
  const again = join(ARTIFACT_DIR, 'again.mp4');
  writeFileSync(again, readFileSync(BIG_FIXTURE));
  await throttleUploads(context, page, 1_500_000);
  await navigate(page, 'Convert');
  await page.setInputFiles('#file-input', again);
  const second = nextUpload(page);
  await page.click('#upload-submit');
  const { jobId: secondId } = await second;
  await page.waitForFunction(() => Number(document.getElementById('upload-progress').value) >= 25, null, { timeout: 60_000 });
  await page.reload();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  // The reload stays on the conversions (#/jobs), where the job waits for the rest of its file.
  const row = page.locator(`li[data-testid=job][data-job-id="${secondId}"]`);
  await row.waitFor({ state: 'visible' });
  assert.equal(await row.getAttribute('data-status'), 'uploading');
  await navigate(page, 'Convert');
  const unfinished = page.locator('[data-testid=unfinished]');
  await unfinished.waitFor({ state: 'visible' });
  assert.match(await unfinished.textContent(), /Unfinished upload: again\.mp4\. Choose the same file again/);
  appends.length = 0;
  await page.setInputFiles('#file-input', again);
  await page.click('#upload-submit');
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === 'done', secondId, { timeout: JOB_TIMEOUT });
  assert.ok(appends.length > 0 && appends[0] >= size / 5, `after the reload, the first append went on from the server's offset: ${appends}`);
  assert.equal(await page.evaluate(() => document.getElementById('unfinished').hidden), true, 'nothing unfinished any more');
  await context.close();
  assert.deepEqual(problems, []);
});

test('a link is imported by the server and converts; a refused one says why', { timeout: 180_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await signIn(page);
  await page.selectOption('#format', 'mp3');
  await page.fill('#import-url', IMPORT_URL);
  const imported = page.waitForResponse((r) => r.url().includes('/upload?') && r.request().method() === 'POST');
  await page.click('#upload-submit');
  const res = await imported;
  assert.equal(res.status(), 202, await res.text());
  assert.equal(new URL(res.url()).searchParams.get('url'), IMPORT_URL);
  const { job_id: jobId } = await res.json();
  const row = page.locator(`li[data-testid=job][data-job-id="${jobId}"]`);
  assert.equal(await row.locator('[data-testid=job-name]').textContent(), 'talk.mp4');
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === 'done', jobId, { timeout: JOB_TIMEOUT });
  await navigate(page, 'Convert');
  assert.equal(await page.inputValue('#import-url'), '', 'the link field is cleared for the next one');
  // A link to an internal address is refused at once, with the reason.
  await page.fill('#import-url', 'http://169.254.169.254/latest/meta-data/');
  await page.click('#upload-submit');
  await page.waitForFunction(() => /internal address/.test(document.querySelector('[data-testid=message]').textContent));
  assert.match(await page.locator('[data-testid=message]').textContent(),
    /The import of http:\/\/169\.254\.169\.254\/latest\/meta-data\/ failed\. The server could not accept that: 169\.254\.169\.254 is a loopback, private or otherwise internal address/);
  await context.close();
  assert.deepEqual(problems, []);
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
  await page.waitForFunction(() => {
    const names = [...document.querySelectorAll('li[data-testid=job] [data-testid=job-name]')].map((e) => e.textContent);
    return names.includes('first.mp4') && names.includes('second.mp4');
  }, null, { timeout: 60_000 });
  await context.close();
  assert.deepEqual(problems, []);
});

test('the progress track shows in the light and the dark theme', { timeout: 60_000 }, async () => {
  // The track's colour in each theme (the filled part is the accent colour).
  const expected = { light: 'rgb(213, 217, 228)', dark: 'rgb(42, 47, 61)' };
  for (const colorScheme of ['light', 'dark']) {
    const { context, page, problems } = await open({ colorScheme });
    await signIn(page);
    // The upload is held until the track has been looked at, then refused.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route((url) => url.pathname === '/uploads', async (route) => {
      await held;
      await route.fulfill({ status: 400, contentType: 'application/json', body: '{"error":"refused","detail":"refused by the test"}' });
    });
    await page.setInputFiles('#file-input', smallFile('track.mp4'));
    await page.click('#upload-submit');
    const bar = page.locator('#upload-progress');
    await bar.waitFor({ state: 'visible' });
    const [track, card] = await page.evaluate(() => [
      getComputedStyle(document.getElementById('upload-progress')).backgroundColor,
      getComputedStyle(document.getElementById('upload-progress').closest('.card')).backgroundColor,
    ]);
    assert.equal(track, expected[colorScheme], `${colorScheme}: the track is ${track}`);
    assert.notEqual(track, card, `${colorScheme}: the track differs from the card behind it`);
    release();
    await page.waitForFunction(() => /refused by the test/.test(document.getElementById('message').textContent));
    await context.close();
    assert.deepEqual(problems, []);
  }
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
  await page.waitForFunction(() => document.getElementById('message').classList.contains('error'));
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
  await context.close();
  assert.deepEqual(problems, []);
});

test('Retry opens the options a failed job ran with, and runs it again with the changed ones', { timeout: 180_000 }, async () => {
  const { context, page, problems } = await open({ bypassCSP: true });
  await signIn(page);
  // A start past the end of the 2 s video: the job fails, and other options can make it work.
  await page.selectOption('#format', 'mp3');
  await page.selectOption('#bitrate', '128');
  await page.click('#advanced-toggle');
  await page.fill('#opt-start', '9000');
  await page.setInputFiles('#file-input', FIXTURE);
  const uploaded = nextUpload(page);
  await page.click('#upload-submit');
  const { jobId } = await uploaded;
  const row = page.locator(`li[data-testid=job][data-job-id="${jobId}"]`);
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === 'failed', jobId, { timeout: JOB_TIMEOUT });
  const retry = row.locator('[data-testid=retry]');
  await retry.waitFor({ state: 'visible' });
  await retry.click();
  const dialog = page.locator('[data-testid=retry-dialog]');
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await page.inputValue('#retry-format'), 'mp3');
  assert.equal(await page.inputValue('#retry-bitrate'), '128');
  assert.equal(await page.inputValue('#retry-opt-start'), '9000');
  await checkAccessibility(page, 'the retry dialog');
  await page.selectOption('#retry-format', 'ogg');
  await page.selectOption('#retry-bitrate', '160');
  await dialog.locator('summary').click();
  await page.fill('#retry-opt-start', '');
  const retried = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === `/jobs/${jobId}/retry`);
  await dialog.locator('[data-testid=retry-submit]').click();
  const request = await retried;
  assert.deepEqual(Object.fromEntries(new URL(request.url()).searchParams), { format: 'ogg', bitrate: '160' });
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === 'done', jobId, { timeout: JOB_TIMEOUT });
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"] [data-testid=job-meta]`).textContent.startsWith('→ OGG · 160 kbps · '), jobId);
  assert.equal(await retry.isVisible(), false);
  await context.close();
  assert.deepEqual(problems, []);
});

test('advanced options are reset after each batch unless the user keeps them', { timeout: 60_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page);
  const sent = await refuseUploads(page);
  const batch = async (name) => {
    await page.setInputFiles('#file-input', smallFile(name));
    await page.click('#upload-submit');
    await page.waitForFunction((n) => document.getElementById('message').textContent.includes(`Upload of ${n} failed`), name);
    await navigate(page, 'Convert');
  };
  // One batch with a tag...
  await page.click('#advanced-toggle');
  await page.fill('#opt-artist', 'Batch One');
  await page.selectOption('#opt-normalize', '-16');
  assert.equal(await page.locator('[data-testid=advanced-count]').textContent(), ' (2 set)');
  await batch('one.mp4');
  assert.equal(sent[0].artist, 'Batch One');
  // ...and the next has none: the form says so, and the upload carries none.
  assert.equal(await page.inputValue('#opt-artist'), '');
  assert.equal(await page.inputValue('#opt-normalize'), '');
  assert.equal(await page.locator('[data-testid=advanced-count]').textContent(), '');
  await batch('two.mp4');
  assert.deepEqual(sent[1], { filename: 'two.mp4', filetype: 'video/mp4', format: 'mp3', bitrate: '192' });
  // "Keep these options": they stay for the next batch.
  await page.click('#advanced-toggle');
  await page.check('#keep-options');
  await page.fill('#opt-artist', 'Series');
  await batch('three.mp4');
  assert.equal(await page.inputValue('#opt-artist'), 'Series');
  assert.equal(await page.isChecked('#keep-options'), true);
  await batch('four.mp4');
  assert.equal(sent[3].artist, 'Series');
  await context.close();
  assert.deepEqual(problems, []);
});

test('the options are built from GET /formats: codecs named, only the rates a plugin takes, levels for FLAC', { timeout: 60_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page);
  // What the worker's plugins declared.
  await until(async () => (await page.evaluate(async () => (await (await fetch('/formats')).json()).every((f) => Array.isArray(f.bitrates)))),
    'the worker publishing its formats');
  const formats = await page.evaluate(async () => (await fetch('/formats')).json());
  const info = Object.fromEntries(formats.map((f) => [f.format, f]));
  await page.reload();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#format option[value=flac]'));

  // Format labels say the codec, or that the format is lossless.
  const labels = Object.fromEntries(await page.locator('#format option').evaluateAll((options) => options.map((o) => [o.value, o.textContent])));
  assert.equal(labels.ogg, 'OGG (Vorbis)');
  assert.equal(labels.opus, 'OPUS (Opus)');
  assert.equal(labels.flac, 'FLAC — lossless');
  assert.equal(labels.wav, 'WAV — lossless');
  assert.equal(labels.mp3, 'MP3');
  const values = (selector) => page.locator(`${selector} option`).evaluateAll((options) => options.map((o) => o.value));

  // Opus: its bitrates, no VBR, and the one sample rate it takes.
  await page.selectOption('#format', 'opus');
  assert.deepEqual(await values('#bitrate'), info.opus.bitrates.map(String));
  assert.deepEqual(await values('#opt-rate'), ['', ...info.opus.sample_rates.map(String)]);
  assert.deepEqual(info.opus.sample_rates, [48000]);
  assert.equal(await page.locator('#options [data-field=level]').isVisible(), false, 'no compression level for Opus');

  // FLAC: "Lossless" rather than a bitrate, and its compression levels.
  await page.selectOption('#format', 'flac');
  assert.equal(await page.locator('#bitrate').textContent(), 'Lossless');
  assert.ok(await page.locator('#bitrate').isDisabled());
  assert.ok(await page.locator('#opt-level').isVisible(), 'a compression level for FLAC');
  assert.deepEqual(await values('#opt-level'), ['', ...info.flac.levels.map(String)]);
  await page.selectOption('#opt-level', '8');

  // The peak ceiling belongs to loudness normalization.
  await page.click('#advanced-toggle');
  assert.ok(await page.locator('#opt-true-peak').isDisabled(), 'no ceiling without normalization');
  await page.selectOption('#opt-normalize', '-16');
  assert.ok(!(await page.locator('#opt-true-peak').isDisabled()));
  await page.selectOption('#opt-true-peak', '-2');
  const sent = await refuseUploads(page);
  await page.setInputFiles('#file-input', smallFile('levels.mp4'));
  await page.click('#upload-submit');
  await until(() => sent.length === 1, 'the upload');
  assert.deepEqual(sent[0], {
    filename: 'levels.mp4', filetype: 'video/mp4', format: 'flac', level: '8', normalize: '-16', true_peak: '-2',
  });
  await context.close();
  assert.deepEqual(problems, []);
});

/** Whether the element's box lies within the viewport. */
function inViewport(locator) {
  return locator.evaluate((e) => {
    const box = e.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0;
  });
}

test('sections are one click away on desktop and phone, light and dark, deep-linkable, and accessible', { timeout: 240_000 }, async () => {
  const viewports = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
  for (const [device, viewport] of Object.entries(viewports)) {
    for (const colorScheme of ['light', 'dark']) {
      const label = `${device}, ${colorScheme}`;
      const { context, page, problems } = await open({ viewport, colorScheme, bypassCSP: true });
      await page.goto(BASE_URL + '/');
      await page.locator('#login-form').waitFor({ state: 'visible' });
      await checkAccessibility(page, `${label}: sign-in`);
      await signIn(page);
      assert.equal(await page.locator('#nav').getByRole('link', { name: 'Users' }).isVisible(), false, 'Users is for administrators');
      await checkAccessibility(page, `${label}: convert`);

      await navigate(page, 'Account');
      assert.equal(new URL(page.url()).hash, '#/account');
      const heading = page.locator('#account-title');
      assert.equal(await heading.textContent(), 'Your account');
      assert.ok(await inViewport(heading), `${label}: the Account heading is in the first screen`);
      assert.equal(await page.locator('#convert-view').isVisible(), false);
      assert.equal(await page.locator('#nav a[aria-current=page]').textContent(), 'Account');
      await checkAccessibility(page, `${label}: account`);
      await page.screenshot({ path: join(ARTIFACT_DIR, `web-account-${device}-${colorScheme}.png`) });

      await navigate(page, 'Conversions');
      assert.equal(new URL(page.url()).hash, '#/jobs');
      assert.ok(await inViewport(page.locator('#jobs-title')), `${label}: the Conversions heading is in the first screen`);
      await checkAccessibility(page, `${label}: conversions`);

      // Back and forward walk through the sections.
      await page.goBack();
      await page.locator('#account-view').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#jobs-view').isVisible(), false);
      await page.goForward();
      await page.locator('#jobs-view').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#account-view').isVisible(), false);
      await context.close();
      assert.deepEqual(problems, []);
    }
  }

  // A link to a section opens it (a new tab of the signed-in browser); #/users is only for
  // administrators.
  const { context, page, problems } = await open();
  await signIn(page);
  const linked = await context.newPage();
  await linked.goto(BASE_URL + '/#/account');
  await linked.locator('#account-view').waitFor({ state: 'visible' });
  assert.equal(await linked.locator('#convert-view').isVisible(), false);
  assert.equal(await linked.locator('#nav a[aria-current=page]').textContent(), 'Account');
  await linked.goto(BASE_URL + '/#/users');
  await linked.locator('#convert-view').waitFor({ state: 'visible' });
  assert.equal(await linked.locator('#admin-view').isVisible(), false);
  await context.close();
  assert.deepEqual(problems, []);
});

test('the conversions list goes page by page past a few hundred jobs; rows say bitrate or quality and tags', { timeout: 60_000 }, async () => {
  const { context, page, problems } = await open();
  // 320 finished jobs, newest first, as GET /jobs pages them.
  const jobs = Array.from({ length: 320 }, (_, i) => ({
    id: i.toString(16).padStart(32, '0'), status: 'done', progress: 100, source_name: `clip-${i}.mp4`,
    options: { format: 'mp3', bitrate_kbps: 192, cover: true }, created_at: 1_800_000_000 - i * 60,
    expires_at: 1_900_000_000, output: { size: 1000 }, notifications: [],
  }));
  // The newest: variable bitrate, and tags set at upload.
  jobs[0].options = { format: 'ogg', vbr_quality: 3, title: 'Talk', artist: 'Ada', album: 'Notes', cover: true };
  const asked = [];
  await page.route((url) => url.pathname === '/jobs', (route) => {
    const url = new URL(route.request().url());
    const limit = Number(url.searchParams.get('limit'));
    const offset = Number(url.searchParams.get('offset') || 0);
    asked.push([limit, offset]);
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(jobs.slice(offset, offset + limit)) });
  });
  await signIn(page);
  await navigate(page, 'Conversions');
  const names = () => page.locator('li[data-testid=job] [data-testid=job-name]').allTextContents();
  await page.waitForFunction(() => document.querySelectorAll('li[data-testid=job]').length === 50);
  assert.deepEqual((await names()).slice(0, 2), ['clip-0.mp4', 'clip-1.mp4']);
  const newest = page.locator('li[data-testid=job]').first();
  assert.match(await newest.locator('[data-testid=job-meta]').textContent(), /^→ OGG · VBR V3 · .+ · 1000 B · expires /);
  assert.equal(await newest.locator('[data-testid=job-tags]').textContent(), 'Title: Talk · Artist: Ada · Album: Notes');
  assert.match(await page.locator('li[data-testid=job]').nth(1).locator('[data-testid=job-meta]').textContent(), /^→ MP3 · 192 kbps · /);
  assert.equal(await page.locator('li[data-testid=job]').nth(1).locator('[data-testid=job-tags]').isVisible(), false, 'no tags, no line');
  assert.equal(await page.locator('[data-testid=jobs-page]').textContent(), 'Page 1');
  assert.ok(await page.locator('[data-testid=jobs-newer]').isDisabled());
  await page.click('[data-testid=jobs-older]');
  await page.waitForFunction(() => document.querySelector('[data-testid=jobs-page]').textContent === 'Page 2');
  const second = await names();
  assert.equal(second.length, 50);
  assert.deepEqual([second[0], second[49]], ['clip-50.mp4', 'clip-99.mp4']);
  for (let n = 3; n <= 7; n += 1) {
    await page.click('[data-testid=jobs-older]');
    await page.waitForFunction((p) => document.querySelector('[data-testid=jobs-page]').textContent === `Page ${p}`, n);
  }
  const last = await names();
  assert.deepEqual([last.length, last[0], last[last.length - 1]], [20, 'clip-300.mp4', 'clip-319.mp4']);
  assert.ok(await page.locator('[data-testid=jobs-older]').isDisabled(), 'no older page after the last');
  await page.click('[data-testid=jobs-newer]');
  await page.waitForFunction(() => document.querySelector('[data-testid=jobs-page]').textContent === 'Page 6');
  assert.deepEqual(asked.slice(-2), [[51, 300], [51, 250]]);
  await context.close();
  assert.deepEqual(problems, []);
});

test('the account page edits the webhook, sends a test event and shows the last deliveries', { timeout: 180_000 }, async () => {
  const { context, page, problems } = await open();
  await signIn(page, ACCOUNT_EMAIL, PASSWORD);
  const message = page.locator('[data-testid=message]');
  const result = page.locator('[data-testid=webhook-result]');
  await navigate(page, 'Account');
  assert.equal(await page.inputValue('#webhook-url'), '');
  assert.equal(await page.locator('[data-testid=account-usage]').textContent(),
    `Signed in as ${ACCOUNT_EMAIL}. Storage: 0 B of ${mb(QUOTA_BYTES)} used.`);

  // No webhook yet: the test event says so (the server's 409).
  await page.click('[data-testid=webhook-test]');
  await page.waitForFunction(() => document.querySelector('[data-testid=webhook-result]').textContent.startsWith('No test event sent. '));
  assert.ok((await result.textContent()).length > 'No test event sent. '.length, await result.textContent());

  // An address the server refuses: its reason is shown.
  await page.fill('#webhook-url', 'http://169.254.169.254/hook');
  await page.click('[data-testid=webhook-save]');
  await page.waitForFunction(() => document.getElementById('message').classList.contains('error'));
  assert.match(await message.textContent(), /^Webhook not saved\. The server could not accept that: .+/);

  // A good one is stored on the account.
  await page.fill('#webhook-url', WEBHOOK_URL);
  await page.click('[data-testid=webhook-save]');
  await page.waitForFunction((url) => document.getElementById('message').textContent === `Webhook saved: ${url}.`, WEBHOOK_URL);
  await page.reload();
  await page.locator('#account-view').waitFor({ state: 'visible' });
  await page.waitForFunction((url) => document.getElementById('webhook-url').value === url, WEBHOOK_URL);

  // The test event reaches it, and the page says how it went.
  await page.click('[data-testid=webhook-test]');
  await page.waitForFunction(() => document.querySelector('[data-testid=webhook-result]').textContent.startsWith('Test event '), null, { timeout: 40_000 });
  assert.match(await result.textContent(), new RegExp(`^Test event delivered to ${WEBHOOK_URL.replace(/[.:/]/g, '\\$&')}: HTTP 200 \\(.+\\)\\.$`));

  // A conversion notifies it; the account lists the delivery.
  await navigate(page, 'Convert');
  await page.setInputFiles('#file-input', FIXTURE);
  const uploaded = nextUpload(page);
  await page.click('#upload-submit');
  const { jobId } = await uploaded;
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === 'done', jobId, { timeout: JOB_TIMEOUT });
  await navigate(page, 'Account');
  const delivery = page.locator(`li[data-testid=delivery][data-job-id="${jobId}"]`);
  await until(async () => {
    await page.click('[data-testid=deliveries-refresh]');
    await new Promise((resolve) => setTimeout(resolve, 500));
    return (await delivery.count()) === 1;
  }, 'the delivery of the job');
  assert.equal(await delivery.locator('[data-testid=delivery-status]').textContent(), 'delivered');
  assert.match(await delivery.locator('[data-testid=delivery-meta]').textContent(), new RegExp(`^HTTP 200 · attempt 1 · .+ · ${WEBHOOK_URL.replace(/[.:/]/g, '\\$&')}$`));

  // Removed again.
  await page.fill('#webhook-url', '');
  await page.click('[data-testid=webhook-save]');
  await page.waitForFunction(() => document.getElementById('message').textContent === 'Webhook removed.');
  await context.close();
  assert.deepEqual(problems, []);
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
  await page.waitForFunction(() => document.getElementById('message').textContent === 'Saved the preset FLAC archive.');
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
  await page.waitForFunction(() => document.getElementById('message').textContent === 'Preset FLAC archive deleted.');
  assert.deepEqual(deletes, ['/users/me/presets/FLAC%20archive']);
  await presets.waitFor({ state: 'hidden' });
  await context.close();
  assert.deepEqual(problems, []);
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
  await page.waitForFunction(() => document.getElementById('message').classList.contains('error'));
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
  await page.waitForFunction(() => document.getElementById('message').textContent === 'Token Nightly backup created. Copy it now: it is not shown again.');
  await page.click('[data-testid=token-copy]');
  await page.waitForFunction(() => document.getElementById('message').textContent === 'Token copied.');
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
  await context.close();
  assert.deepEqual(problems, []);
});
