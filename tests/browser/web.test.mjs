// The web app in a real (headless, Debian) Chromium, against a running platform.
// Started by tests/tests/browser.rs, which provides:
//   BASE_URL      the platform (e.g. http://127.0.0.1:34567)
//   EMAIL         an existing user...
//   PASSWORD      ...and their password
//   FIXTURE       a video file to convert
//   ARTIFACT_DIR  where screenshots and the downloaded audio go
//   CHROMIUM      (optional) the browser binary, /usr/bin/chromium by default
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';

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
  assert.ok(await page.locator('#bitrate option[value="vbr:2"]').isDisabled(), 'VBR is disabled for Opus');
  assert.ok(!(await page.locator('#bitrate').inputValue()).startsWith('vbr:'), 'a bitrate is chosen for Opus');
  await page.selectOption('#format', 'mp3');
  assert.ok(!(await page.locator('#bitrate option[value="vbr:2"]').isDisabled()), 'VBR is back for mp3');
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

  // ---- delete removes the row and the job
  await page.setViewportSize({ width: 1200, height: 860 });
  const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE');
  await pastRow.locator('[data-testid=delete]').click();
  assert.equal((await deleted).status(), 204);
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
  assert.deepEqual(polls, [], 'no polling while the event stream works');
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
  assert.equal(await page.inputValue('#opt-title'), 'From the page', 'the choices stay for the next file');
  await page.waitForFunction(
    (id) => ['done', 'failed'].includes(document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status),
    jobId, { timeout: JOB_TIMEOUT, polling: 100 },
  );
  const row = page.locator(`li[data-testid=job][data-job-id="${jobId}"]`);
  assert.equal(await row.getAttribute('data-status'), 'done');
  assert.ok(polls >= 1, 'the status was polled');
  assert.match(await row.locator('[data-testid=job-meta]').textContent(), /WAV · 0:00\.5–0:01\.5 · -16 LUFS \(measured -\d+\.\d\) · no cover/);
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

test('an admin manages users, a user changes their password, and sign-out reaches every tab', { timeout: 90_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  const message = page.locator('[data-testid=message]');

  // The admin's users page: create, deactivate, make admin.
  await page.locator('#admin-view').waitFor({ state: 'visible' });
  const email = `panel${Date.now()}@example.com`;
  await page.fill('#new-user-email', email);
  await page.fill('#new-user-password', 'first-password-1');
  await page.click('[data-testid=user-create]');
  const row = page.locator(`li[data-testid=user][data-email="${email}"]`);
  await row.waitFor({ state: 'visible' });
  await row.getByRole('button', { name: `Make admin: ${email}` }).click();
  await page.waitForFunction((e) => document.querySelector(`li[data-email="${e}"]`)?.textContent.includes('admin'), email);
  await row.getByRole('button', { name: `Deactivate: ${email}` }).click();
  await page.waitForFunction((e) => document.querySelector(`li[data-email="${e}"]`)?.textContent.includes('deactivated'), email);
  await row.getByRole('button', { name: `Activate: ${email}` }).click();
  await page.waitForFunction((e) => !document.querySelector(`li[data-email="${e}"]`)?.textContent.includes('deactivated'), email);
  await page.screenshot({ path: join(ARTIFACT_DIR, 'web-users.png'), fullPage: true });

  // A second tab shares the session; signing out in one signs out both.
  const second = await context.newPage();
  await second.goto(BASE_URL + '/');
  await second.locator('#app-view').waitFor({ state: 'visible' });
  await page.click('#sign-out');
  await second.locator('#login-form').waitFor({ state: 'visible' });

  // The new user changes their password; the old one stops working.
  await signIn(page, email, 'first-password-1');
  await page.fill('#current-password', 'wrong-password-9');
  await page.fill('#new-password', 'second-password-2');
  await page.click('[data-testid=password-submit]');
  await page.waitForFunction(() => /not changed/.test(document.getElementById('message').textContent));
  await page.fill('#current-password', 'first-password-1');
  await page.fill('#new-password', 'second-password-2');
  await page.click('[data-testid=password-submit]');
  await page.waitForFunction(() => /has been changed/.test(document.getElementById('message').textContent));
  assert.equal(await page.locator('#admin-view').isVisible(), true, 'made admin above');
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
  await page.setInputFiles('#file-input', again);
  const second = nextUpload(page);
  await page.click('#upload-submit');
  const { jobId: secondId } = await second;
  await page.waitForFunction(() => Number(document.getElementById('upload-progress').value) >= 25, null, { timeout: 60_000 });
  await page.reload();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  const unfinished = page.locator('[data-testid=unfinished]');
  await unfinished.waitFor({ state: 'visible' });
  assert.match(await unfinished.textContent(), /Unfinished upload: again\.mp4\. Choose the same file again/);
  const row = page.locator(`li[data-testid=job][data-job-id="${secondId}"]`);
  await row.waitFor({ state: 'visible' });
  assert.equal(await row.getAttribute('data-status'), 'uploading');
  appends.length = 0;
  await page.setInputFiles('#file-input', again);
  await page.click('#upload-submit');
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === 'done', secondId, { timeout: JOB_TIMEOUT });
  assert.ok(appends.length > 0 && appends[0] >= size / 5, `after the reload, the first append went on from the server's offset: ${appends}`);
  assert.equal(await unfinished.isVisible(), false);
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
