// The conversions list and how it follows jobs: live status from the event stream (with a
// failed job's reason and no Retry where none can help), polling when there is no stream
// (with the advanced options an upload carries and the row that describes them), Retry with
// changed options, and paging through a few hundred jobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import {
  ARTIFACT_DIR, BASE_URL, FIXTURE, checkAccessibility, close, convert, jobNames, jobRow, navigate, nextUpload, open,
  signIn, waitForEnd, waitForStatus,
} from './support.mjs';

test('live status from Server-Sent Events, and a failed job shows its reason', { timeout: 120_000 }, async () => {
  const { context, page, problems } = await open({ viewport: { width: 1200, height: 860 } });
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
  const row = jobRow(page, jobId);
  await waitForStatus(page, jobId, 'failed');
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
  await close(context, problems);
});

test('without an event stream, polling GET /jobs/{id} follows the job to done', { timeout: 180_000 }, async () => {
  const { context, page, problems } = await open({ viewport: { width: 1200, height: 860 } });
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
  const { jobId, metadata } = await convert(page, FIXTURE);
  assert.deepEqual(metadata, {
    filename: basename(FIXTURE), filetype: 'video/mp4',
    format: 'wav', start: '0.5', end: '1.5', normalize: '-16', title: 'From the page', cover: 'none',
  });
  // The advanced options are for this batch only: the form is back to its defaults.
  assert.equal(await page.inputValue('#opt-title'), '', 'the title is not kept for the next batch');
  assert.equal(await page.inputValue('#opt-normalize'), '');
  assert.equal(await page.isChecked('#opt-cover'), true);
  assert.equal(await page.inputValue('#format'), 'wav', 'the format, always in view, stays');
  await waitForEnd(page, jobId);
  const row = jobRow(page, jobId);
  assert.equal(await row.getAttribute('data-status'), 'done');
  assert.ok(polls >= 1, 'the status was polled');
  assert.match(await row.locator('[data-testid=job-meta]').textContent(), /^→ WAV · 0:00\.5–0:01\.5 · -16 LUFS \(measured -\d+\.\d\) · no cover · /);
  assert.equal(await row.locator('[data-testid=job-tags]').textContent(), 'Title: From the page');
  await close(context, problems);
});

test('Retry opens the options a failed job ran with, and runs it again with the changed ones', { timeout: 180_000 }, async () => {
  const { context, page, problems } = await open({ bypassCSP: true });
  await signIn(page);
  // A start past the end of the 2 s video: the job fails, and other options can make it work.
  await page.selectOption('#format', 'mp3');
  await page.selectOption('#bitrate', '128');
  await page.click('#advanced-toggle');
  await page.fill('#opt-start', '9000');
  const { jobId } = await convert(page, FIXTURE);
  const row = jobRow(page, jobId);
  await waitForStatus(page, jobId, 'failed');
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
  await waitForStatus(page, jobId, 'done');
  await page.waitForFunction((id) => document.querySelector(`li[data-job-id="${id}"] [data-testid=job-meta]`).textContent.startsWith('→ OGG · 160 kbps · '), jobId);
  assert.equal(await retry.isVisible(), false);
  await close(context, problems);
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
  await page.waitForFunction(() => document.querySelectorAll('li[data-testid=job]').length === 50);
  assert.deepEqual((await jobNames(page)).slice(0, 2), ['clip-0.mp4', 'clip-1.mp4']);
  const newest = page.locator('li[data-testid=job]').first();
  assert.match(await newest.locator('[data-testid=job-meta]').textContent(), /^→ OGG · VBR V3 · .+ · 1000 B · expires /);
  assert.equal(await newest.locator('[data-testid=job-tags]').textContent(), 'Title: Talk · Artist: Ada · Album: Notes');
  assert.match(await page.locator('li[data-testid=job]').nth(1).locator('[data-testid=job-meta]').textContent(), /^→ MP3 · 192 kbps · /);
  assert.equal(await page.locator('li[data-testid=job]').nth(1).locator('[data-testid=job-tags]').isVisible(), false, 'no tags, no line');
  assert.equal(await page.locator('[data-testid=jobs-page]').textContent(), 'Page 1');
  assert.ok(await page.locator('[data-testid=jobs-newer]').isDisabled());
  await page.click('[data-testid=jobs-older]');
  await page.waitForFunction(() => document.querySelector('[data-testid=jobs-page]').textContent === 'Page 2');
  const second = await jobNames(page);
  assert.equal(second.length, 50);
  assert.deepEqual([second[0], second[49]], ['clip-50.mp4', 'clip-99.mp4']);
  for (let n = 3; n <= 7; n += 1) {
    await page.click('[data-testid=jobs-older]');
    await page.waitForFunction((p) => document.querySelector('[data-testid=jobs-page]').textContent === `Page ${p}`, n);
  }
  const last = await jobNames(page);
  assert.deepEqual([last.length, last[0], last[last.length - 1]], [20, 'clip-300.mp4', 'clip-319.mp4']);
  assert.ok(await page.locator('[data-testid=jobs-older]').isDisabled(), 'no older page after the last');
  await page.click('[data-testid=jobs-newer]');
  await page.waitForFunction(() => document.querySelector('[data-testid=jobs-page]').textContent === 'Page 6');
  assert.deepEqual(asked.slice(-2), [[51, 300], [51, 250]]);
  await close(context, problems);
});
