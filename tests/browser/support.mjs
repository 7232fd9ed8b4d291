// What every browser test file shares: the settings tests/tests/browser.rs passes in, the one
// headless Chromium of the run (launched before the first test, closed after the last), and
// the page steps the tests repeat (sign in, go to a section, upload, wait for a job, check
// accessibility). Importing it registers the browser's before/after hooks, so each test file
// also runs on its own (`node --test upload.test.mjs`, with the same variables set).
//
// The variables, from tests/tests/browser.rs:
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
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
/** axe-core's browser build, injected into the page for the accessibility check. */
const AXE_PATH = require.resolve('axe-core/axe.min.js');

function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (run this through \`cargo test -p e2e-tests --test browser\`)`);
  return value;
}

export const BASE_URL = env('BASE_URL');
export const EMAIL = env('EMAIL');
export const PASSWORD = env('PASSWORD');
export const FIXTURE = env('FIXTURE');
export const BIG_FIXTURE = env('BIG_FIXTURE');
export const IMPORT_URL = env('IMPORT_URL');
export const WEBHOOK_URL = env('WEBHOOK_URL');
export const ACCOUNT_EMAIL = env('ACCOUNT_EMAIL');
export const QUOTA_BYTES = Number(env('QUOTA_BYTES'));
export const ADMIN_EMAIL = env('ADMIN_EMAIL');
export const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
export const ARTIFACT_DIR = env('ARTIFACT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const JOB_TIMEOUT = 120_000;

const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** The run's browser (set by the `before` hook below; a live binding for the importers). */
export let browser;
before(async () => {
  mkdirSync(ARTIFACT_DIR, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
});
after(() => browser?.close());

/** An MP3 starts with an ID3v2 tag or an MPEG audio frame sync (11 set bits). */
export function looksLikeMp3(bytes) {
  const id3 = bytes[0] === 0x49 && bytes[1] === 0x44 && bytes[2] === 0x33;
  const sync = bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0;
  return id3 || sync;
}

/** A new page with its uncaught errors collected (`problems`), in a context of its own. */
export async function open(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { context, page, problems };
}

/** Closes a context opened by `open`: its pages must have raised no uncaught error. */
export async function close(context, problems) {
  await context.close();
  assert.deepEqual(problems, []);
}

/** Signs in through the form. */
export async function signIn(page, email = EMAIL, password = PASSWORD) {
  await page.goto(BASE_URL + '/');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#login-submit');
  await page.locator('#app-view').waitFor({ state: 'visible' });
}

/** The view each navigation link shows. */
const VIEWS = { Convert: '#convert-view', Conversions: '#jobs-view', Account: '#account-view', Users: '#admin-view' };

/** Goes to a section through the navigation bar, as a user would. */
export async function navigate(page, name) {
  await page.locator('#nav').getByRole('link', { name, exact: true }).click();
  await page.locator(VIEWS[name]).waitFor({ state: 'visible' });
}

/** A small file for tests that stop the upload before it reaches the server. */
export function smallFile(name, bytes = 4096) {
  return { name, mimeType: 'video/mp4', buffer: Buffer.alloc(bytes, 1) };
}

/** The options a tus creation request carries (its `Upload-Metadata`, decoded). */
export function uploadMetadata(request) {
  return Object.fromEntries((request.headers()['upload-metadata'] || '').split(',').filter(Boolean).map((pair) => {
    const [key, value] = pair.split(' ');
    return [key, value ? Buffer.from(value, 'base64').toString('utf8') : ''];
  }));
}

/**
 * The next upload the page starts (through tus): waits for its creation request's answer and
 * returns the job id (its `Location`) and the options it sent (`Upload-Metadata`, decoded).
 */
export async function nextUpload(page) {
  const created = await page.waitForResponse((r) => new URL(r.url()).pathname === '/uploads' && r.request().method() === 'POST');
  assert.equal(created.status(), 201, `the upload's creation answered ${created.status()}: ${await created.text()}`);
  const jobId = created.headers()['location'].split('/').pop();
  return { jobId, metadata: uploadMetadata(created.request()) };
}

/** Clicks Convert for the chosen file(s): the first upload it starts, as `nextUpload` says. */
export async function submitUpload(page) {
  const started = nextUpload(page);
  await page.click('#upload-submit');
  return started;
}

/** Chooses `file` in the form and converts it with the form's options (see `submitUpload`). */
export async function convert(page, file) {
  await page.setInputFiles('#file-input', file);
  return submitUpload(page);
}

/** The job's row in the conversions list. */
export function jobRow(page, jobId) {
  return page.locator(`li[data-testid=job][data-job-id="${jobId}"]`);
}

/** Waits until the job's row in the conversions list has the status `status`. */
export async function waitForStatus(page, jobId, status, timeout = JOB_TIMEOUT) {
  await page.waitForFunction(
    ([id, s]) => document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status === s,
    [jobId, status], { timeout },
  );
}

/** Waits until the job's row has ended, done or failed (polling every 100 ms). */
export async function waitForEnd(page, jobId) {
  await page.waitForFunction(
    (id) => ['done', 'failed'].includes(document.querySelector(`li[data-job-id="${id}"]`)?.dataset.status),
    jobId, { timeout: JOB_TIMEOUT, polling: 100 },
  );
}

/** The file names of the rows in the conversions list, in order. */
export function jobNames(page) {
  return page.locator('li[data-testid=job] [data-testid=job-name]').allTextContents();
}

/** Waits until the conversions list has a row for each of `names`. */
export async function waitForJobNames(page, names) {
  await page.waitForFunction((wanted) => {
    const shown = [...document.querySelectorAll('li[data-testid=job] [data-testid=job-name]')].map((e) => e.textContent);
    return wanted.every((name) => shown.includes(name));
  }, names, { timeout: 60_000 });
}

/** Waits until the page's message is an error. */
export async function waitForError(page) {
  await page.waitForFunction(() => document.getElementById('message').classList.contains('error'));
}

/** Waits until the page's message reads exactly `text`. */
export async function waitForMessage(page, text) {
  await page.waitForFunction((t) => document.getElementById('message').textContent === t, text);
}

/**
 * Answers every upload creation (`POST /uploads`) with a 400 instead of the server, recording
 * the options it carried: for tests of what the form sends, without a conversion.
 */
export async function refuseUploads(page) {
  const sent = [];
  await page.route((url) => url.pathname === '/uploads', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    sent.push(uploadMetadata(route.request()));
    return route.fulfill({ status: 400, contentType: 'application/json', body: '{"error":"refused","detail":"refused by the test"}' });
  });
  return sent;
}

/** Waits until `check()` is true (polled every 100 ms). */
export async function until(check, what, timeout = 30_000) {
  const end = Date.now() + timeout;
  while (!(await check())) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Waits `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs axe-core in the page: no serious or critical violation in what is shown. */
export async function checkAccessibility(page, label) {
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
export function mb(bytes) {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}
