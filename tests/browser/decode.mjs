// Plays and decodes audio in headless Debian Chromium, as the page's player does: for each
// signed download link in LINKS (JSON list of paths under BASE_URL), an <audio> element loads
// it from the server (streaming with Range) and starts playing, and Web Audio decodes the
// fetched bytes at the file's own rate. Prints one JSON line per link:
// {link, canPlayType, played, duration, frames, channels}. Run by tests/tests/formats_m4a.rs.
//
// Environment: BASE_URL, LINKS, MIME (e.g. audio/mp4; codecs="mp4a.40.2"), RATE (the files'
// sample rate), CHROMIUM (optional, /usr/bin/chromium by default).
import { chromium } from 'playwright-core';

const BASE_URL = process.env.BASE_URL;
const LINKS = JSON.parse(process.env.LINKS);
const MIME = process.env.MIME;
const RATE = Number(process.env.RATE);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage();
  // Same origin as the links, like the web app.
  await page.goto(BASE_URL);
  for (const link of LINKS) {
    const result = await page.evaluate(async ({ link, mime, rate }) => {
      const audio = new Audio();
      audio.muted = true;
      const canPlayType = audio.canPlayType(mime);
      audio.src = link;
      const ready = await new Promise((resolve) => {
        audio.oncanplay = () => resolve(true);
        audio.onerror = () => resolve(`error: ${audio.error && audio.error.message}`);
        setTimeout(() => resolve('timeout'), 15000);
      });
      let played = ready;
      if (ready === true) {
        try { await audio.play(); played = !audio.paused; } catch (e) { played = String(e); }
      }
      const bytes = await (await fetch(link)).arrayBuffer();
      const buffer = await new OfflineAudioContext(1, 1, rate).decodeAudioData(bytes);
      return { link, canPlayType, played, duration: audio.duration, frames: buffer.length, channels: buffer.numberOfChannels };
    }, { link, mime: MIME, rate: RATE });
    console.log(JSON.stringify(result));
  }
} finally {
  await browser.close();
}
