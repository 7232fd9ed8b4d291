// The Convert form's options: built from what GET /formats declares (codec names, the rates
// and levels a plugin takes, the peak ceiling only with normalization), advanced options reset
// after each batch unless kept, and the upload's progress track in the light and dark themes.
// Uploads here are refused by the test (or held) before any conversion: what is checked is
// what the form sends and shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  close, navigate, open, refuseUploads, signIn, smallFile, until,
} from './support.mjs';

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
    await close(context, problems);
  }
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
  await close(context, problems);
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

  // MP3: the bitrates the chosen rate carries (144 kbps only at the MPEG-2 rates); as the
  // source, those 44.1 and 48 kHz both carry.
  await page.selectOption('#format', 'mp3');
  const vbr = async (list) => [...list, ...(await values('#bitrate')).filter((v) => v.startsWith('vbr:'))];
  assert.deepEqual(await values('#bitrate'), await vbr(info.mp3.bitrates_by_rate['44100'].map(String)));
  assert.ok(!(await values('#bitrate')).includes('144'), 'no 144 kbps at the source rate');
  await page.click('#advanced-toggle');
  await page.selectOption('#opt-rate', '22050');
  assert.deepEqual(await values('#bitrate'), await vbr(info.mp3.bitrates_by_rate['22050'].map(String)));
  assert.ok((await values('#bitrate')).includes('144') && !(await values('#bitrate')).includes('192'));
  await page.selectOption('#bitrate', '144');
  await page.selectOption('#opt-rate', '48000');
  assert.equal(await page.inputValue('#bitrate'), '192', 'a bitrate the new rate lacks falls back to the default');
  await page.selectOption('#opt-rate', '');
  await page.click('#advanced-toggle');

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
  await close(context, problems);
});

