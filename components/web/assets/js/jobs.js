/**
 * The conversions: the list (`GET /jobs`, a page of 50 at a time), each row's live status
 * (Server-Sent Events, or polling without them), and what a row offers: download, play, share,
 * delete (after a confirmation naming the file) and retry (only where the server says another
 * run could go differently, with the options editable).
 */

import { api, describe, errorBody, session } from './api.js';
import { confirmAction, formatDate, formatSize, formatTime, make, say } from './ui.js';
import { OptionsPanel, clonePanel, paramsFromJob } from './options.js';
import { refreshUsage } from './account.js';

const FINAL = new Set(['done', 'failed']);
const POLL_MS = 1000;
// Browsers allow ~6 HTTP/1.1 connections per host: keep some for uploads and downloads.
const MAX_STREAMS = 3;
export const PAGE = 50;

const list = document.getElementById('jobs');
const empty = document.getElementById('jobs-empty');
const pager = document.getElementById('jobs-pager');
const newer = document.getElementById('jobs-newer');
const older = document.getElementById('jobs-older');
const pageLabel = document.getElementById('jobs-page');

/** job id → {job, stream: EventSource|null, timer: number|null} */
const tracked = new Map();
let activeStreams = 0;
/** The page of the list shown, from 1 (the newest jobs). */
let page = 1;
/** Data of the jobs the list shows, by id (the rows are rebuilt from it). */
const shown = new Map();

// ------------------------------------------------------------------ the list

/** Loads page `n` of the list (default: the one shown). */
export async function loadJobs(n = page) {
  try {
    // One more than a page: whether there is an older page.
    const res = await api(`/jobs?limit=${PAGE + 1}&offset=${(n - 1) * PAGE}`);
    if (res.status === 401) { session.onExpired(); return; }
    if (!res.ok) { say(`Could not load your conversions. ${describe(res.status, await errorBody(res))}`, 'error'); return; }
    const jobs = await res.json();
    if (!jobs.length && n > 1) { loadJobs(n - 1); return; }
    page = n;
    const more = jobs.length > PAGE;
    list.replaceChildren();
    shown.clear();
    for (const job of jobs.slice(0, PAGE)) {
      upsertJob(job, { create: true });
      if (!FINAL.has(job.status)) track(job);
    }
    pager.hidden = page === 1 && !more;
    newer.disabled = page === 1;
    older.disabled = !more;
    pageLabel.textContent = `Page ${page}`;
    empty.hidden = list.children.length > 0;
  } catch {
    say(`Could not load your conversions. ${describe(0)}`, 'error');
  }
}

document.getElementById('refresh-jobs').addEventListener('click', () => loadJobs());
newer.addEventListener('click', () => loadJobs(page - 1));
older.addEventListener('click', () => loadJobs(page + 1));

/** A job just started in this page (upload or import): on top of the first page, followed. */
export function addJob(job) {
  if (page !== 1) loadJobs(1);
  upsertJob(job, { create: true, prepend: true });
  track(job);
}

/** Forgets everything (signed out). */
export function resetJobs() {
  for (const id of [...tracked.keys()]) finish(id);
  list.replaceChildren();
  shown.clear();
  page = 1;
  pager.hidden = true;
  empty.hidden = false;
}

function jobItem(id) {
  return list.querySelector(`li[data-job-id="${CSS.escape(id)}"]`);
}

/** "192 kbps", "VBR V2", "level 8": how the audio is encoded. */
function quality(o) {
  if (o.bitrate_kbps) return `${o.bitrate_kbps} kbps`;
  if (o.vbr_quality != null) return `VBR V${o.vbr_quality}`;
  return '';
}

/** The audio options of a job in a few words, e.g. "0:05–1:30 · mono · −16 LUFS (measured −23.4)". */
function optionsSummary(job) {
  const o = job.options || {};
  const parts = [];
  if (o.level != null) parts.push(`level ${o.level}`);
  if (o.start_secs != null || o.end_secs != null) parts.push(`${formatTime(o.start_secs || 0)}–${o.end_secs != null ? formatTime(o.end_secs) : 'end'}`);
  if (o.sample_rate) parts.push(`${o.sample_rate / 1000} kHz`);
  if (o.channels) parts.push(o.channels === 1 ? 'mono' : 'stereo');
  if (o.track != null) parts.push(`track ${o.track}`);
  if (o.normalize) {
    const l = job.loudness;
    const measured = !l ? '' : l.measured_lufs != null ? ` (measured ${l.measured_lufs.toFixed(1)})` : ' (silent)';
    const peak = o.normalize.true_peak_dbtp != null && o.normalize.true_peak_dbtp !== -1 ? `, peak ${o.normalize.true_peak_dbtp} dBTP` : '';
    parts.push(`${o.normalize.target_lufs} LUFS${measured}${peak}`);
  }
  if (o.cover === false) parts.push('no cover');
  return parts.join(' · ');
}

/** "Title: Talk · Artist: Ada · Album: Notes" from the job's tag overrides. */
function tagsSummary(o = {}) {
  return [['Title', o.title], ['Artist', o.artist], ['Album', o.album]]
    .filter(([, value]) => value).map(([name, value]) => `${name}: ${value}`).join(' · ');
}

const ROW = `
  <div class="job-main">
    <span class="job-name" data-testid="job-name"></span>
    <span class="job-meta" data-testid="job-meta"></span>
    <span class="job-tags" data-testid="job-tags" hidden></span>
  </div>
  <span class="badge" data-testid="job-status"></span>
  <progress class="job-progress" max="100" value="0" data-testid="job-progress"></progress>
  <p class="job-error" data-testid="job-error" hidden></p>
  <div class="job-player" data-testid="player" hidden></div>
  <div class="job-actions">
    <button type="button" class="download" data-testid="download" hidden>Download</button>
    <button type="button" class="play secondary small" data-testid="play" hidden>Play</button>
    <button type="button" class="share secondary small" data-testid="share" hidden>Copy link</button>
    <button type="button" class="retry secondary small" data-testid="retry" hidden>Retry</button>
    <button type="button" class="delete secondary small" data-testid="delete">Delete</button>
  </div>`;

/**
 * Merges `job` into what is known of it and shows it: its row is updated, or made when
 * `create` (on top when `prepend`). Returns the merged job.
 */
function upsertJob(job, { create = false, prepend = false } = {}) {
  const previous = tracked.get(job.id);
  const merged = { ...(previous ? previous.job : {}), ...(shown.get(job.id) || {}), ...job };
  if (previous) previous.job = merged;
  let li = jobItem(job.id);
  if (!li && !create) return merged;
  shown.set(job.id, merged);
  if (!li) {
    li = make('li', { className: 'job', testid: 'job' });
    li.dataset.jobId = job.id;
    li.innerHTML = ROW;
    const id = job.id;
    li.querySelector('.download').addEventListener('click', (event) => download(id, event.currentTarget));
    li.querySelector('.play').addEventListener('click', (event) => play(id, event.currentTarget));
    li.querySelector('.share').addEventListener('click', (event) => share(id, event.currentTarget));
    li.querySelector('.retry').addEventListener('click', () => openRetry(id));
    li.querySelector('.delete').addEventListener('click', (event) => deleteJob(id, event.currentTarget));
    if (prepend) list.prepend(li); else list.append(li);
    if (list.children.length > PAGE) list.lastElementChild.remove();
  }

  const name = merged.source_name || merged.id;
  const options = merged.options || {};
  const format = options.format;
  const status = merged.status || 'queued';
  const progress = status === 'done' ? 100 : Math.max(0, Math.min(100, merged.progress || 0));
  li.dataset.status = status;
  li.querySelector('.job-name').textContent = name;
  li.querySelector('.job-meta').textContent = [
    format ? `→ ${format.toUpperCase()}` : '',
    quality(options),
    optionsSummary(merged),
    merged.created_at ? formatDate(merged.created_at) : '',
    merged.output && merged.output.size ? formatSize(merged.output.size) : '',
    merged.expires_at ? `expires ${formatDate(merged.expires_at)}` : '',
  ].filter(Boolean).join(' · ');
  const tags = li.querySelector('.job-tags');
  tags.textContent = tagsSummary(options);
  tags.hidden = !tags.textContent;
  const badge = li.querySelector('.badge');
  badge.textContent = status === 'converting' || status === 'uploading' ? `${status} ${progress}%` : status;
  badge.dataset.status = status;
  const bar = li.querySelector('.job-progress');
  bar.value = progress;
  bar.hidden = FINAL.has(status);
  bar.setAttribute('aria-label', `${name}: ${status} ${progress}%`);
  const err = li.querySelector('.job-error');
  err.hidden = status !== 'failed';
  err.textContent = status === 'failed' ? (merged.error || 'The conversion failed.') : '';
  const button = li.querySelector('.download');
  button.hidden = status !== 'done';
  button.setAttribute('aria-label', `Download ${name} as ${(format || 'audio').toUpperCase()}`);
  for (const cls of ['.play', '.share']) li.querySelector(cls).hidden = status !== 'done';
  li.querySelector('.play').setAttribute('aria-label', `Play ${name}`);
  li.querySelector('.share').setAttribute('aria-label', `Copy link for ${name}`);
  const retry = li.querySelector('.retry');
  // Only where another run could go differently (the server says so): not for a file that has
  // no audio, say, nor once its source is gone.
  retry.hidden = !(status === 'failed' && merged.retryable === true && !merged.source_freed);
  retry.setAttribute('aria-label', `Retry ${name}`);
  li.querySelector('.delete').setAttribute('aria-label', `Delete ${name}`);
  empty.hidden = list.children.length > 0;
  return merged;
}

// ------------------------------------------------------------------ live status

export function track(job) {
  const id = job.id;
  if (tracked.has(id)) return;
  const entry = { job: { ...(shown.get(id) || {}), ...job }, stream: null, timer: null };
  tracked.set(id, entry);
  if (typeof EventSource === 'function' && activeStreams < MAX_STREAMS) {
    stream(id, entry);
  } else {
    poll(id, entry);
  }
}

function stopTracking(id) {
  const entry = tracked.get(id);
  if (!entry) return;
  if (entry.stream) { entry.stream.close(); entry.stream = null; activeStreams -= 1; }
  if (entry.timer) { clearTimeout(entry.timer); entry.timer = null; }
}

/** Server-Sent Events: one event per status change, named after the status. */
function stream(id, entry) {
  const url = `/jobs/${encodeURIComponent(id)}/events?access_token=${encodeURIComponent(session.token)}`;
  const source = new EventSource(url);
  entry.stream = source;
  activeStreams += 1;
  const onEvent = (event) => {
    let data;
    try { data = JSON.parse(event.data); } catch { return; }
    update(id, { ...data, status: data.status || event.type });
  };
  for (const type of ['uploading', 'queued', 'converting', 'done', 'failed', 'message']) source.addEventListener(type, onEvent);
  source.addEventListener('error', () => {
    // Ended, refused (the route or the token) or cut: in every case polling takes over until
    // the job is final (a final job stops being tracked before this).
    if (!tracked.has(id) || tracked.get(id) !== entry) return;
    if (entry.stream === source) { source.close(); entry.stream = null; activeStreams -= 1; }
    if (!FINAL.has(entry.job.status)) poll(id, entry);
  });
}

function poll(id, entry) {
  const tick = async () => {
    entry.timer = null;
    if (tracked.get(id) !== entry) return;
    try {
      const res = await api(`/jobs/${encodeURIComponent(id)}`);
      if (res.status === 401) { session.onExpired(); return; }
      if (res.status === 404) { finish(id); return; }
      if (res.ok) update(id, await res.json(), true);
    } catch { /* offline for a moment: try again */ }
    if (tracked.get(id) === entry && !FINAL.has(entry.job.status)) entry.timer = setTimeout(tick, POLL_MS);
  };
  entry.timer = setTimeout(tick, entry.job.status ? POLL_MS : 0);
}

/** A status change of a followed job; `whole` when `data` is the full record. */
function update(id, data, whole = false) {
  const entry = tracked.get(id);
  const before = entry && entry.job.status;
  const job = upsertJob({ id, ...data });
  if (FINAL.has(job.status) && before !== job.status) {
    const name = job.source_name || id;
    if (job.status === 'done') say(`${name} is ready to download.`, 'ok');
    else say(`${name} could not be converted: ${job.error || 'unknown error'}.`, 'error');
  }
  if (FINAL.has(job.status)) {
    finish(id);
    refreshUsage();
    // An event carries the status, not the whole record: fetch it once for its output, expiry
    // and whether a retry could help.
    if (!whole) refreshJob(id);
  }
}

async function refreshJob(id) {
  try {
    const res = await api(`/jobs/${encodeURIComponent(id)}`);
    if (res.ok) upsertJob(await res.json());
  } catch { /* the row keeps what it has */ }
}

function finish(id) {
  stopTracking(id);
  tracked.delete(id);
}

// ------------------------------------------------------------------ delete, retry

function nameOf(id) {
  const job = shown.get(id) || (tracked.get(id) && tracked.get(id).job);
  return (job && job.source_name) || id;
}

async function deleteJob(id, button) {
  const name = nameOf(id);
  const status = shown.get(id)?.status;
  const confirmed = await confirmAction({
    title: `Delete ${name}?`,
    text: FINAL.has(status)
      ? 'Its audio file, the uploaded video and any shared links go now; this cannot be undone.'
      : 'Its conversion stops, and the uploaded video goes now; this cannot be undone.',
  });
  if (!confirmed) return;
  button.disabled = true;
  try {
    const res = await api(`/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
    if (res.status === 401) { session.onExpired(); return; }
    if (res.status !== 204 && res.status !== 404) {
      say(`Could not delete. ${describe(res.status, await errorBody(res))}`, 'error');
      return;
    }
    finish(id);
    jobItem(id)?.remove();
    shown.delete(id);
    empty.hidden = list.children.length > 0;
    say(`Deleted ${name}.`, 'ok');
    refreshUsage();
  } catch {
    say(`Could not delete. ${describe(0)}`, 'error');
  } finally {
    button.disabled = false;
  }
}

const retryDialog = document.getElementById('retry-dialog');
const retryText = document.getElementById('retry-text');
let retryPanel = null;
let retrying = null;

/** The retry dialog gets a copy of the upload form's options (`source`). */
export function initRetry(source) {
  const copy = clonePanel(source, 'retry-');
  document.getElementById('retry-options').append(copy);
  retryPanel = new OptionsPanel(copy);
  retryDialog.addEventListener('close', () => {
    const id = retrying;
    retrying = null;
    if (id && retryDialog.returnValue === 'retry') retryJob(id, retryPanel.params());
  });
}

/** Opens the options of the failed job `id`, as it ran, to run it again (changed or not). */
function openRetry(id) {
  const job = shown.get(id);
  if (!job) return;
  retrying = id;
  retryText.textContent = `${nameOf(id)} failed: ${job.error || 'unknown error'}. Change what could help, then convert it again.`;
  retryPanel.set(paramsFromJob(job.options));
  retryDialog.returnValue = '';
  retryDialog.showModal();
}

async function retryJob(id, params) {
  const button = jobItem(id)?.querySelector('.retry');
  if (button) button.disabled = true;
  try {
    const res = await api(`/jobs/${encodeURIComponent(id)}/retry?${params}`, { method: 'POST' });
    if (res.status === 401) { session.onExpired(); return; }
    if (res.status !== 202) { say(`Could not retry. ${describe(res.status, await errorBody(res))}`, 'error'); return; }
    const job = upsertJob({ id, status: 'queued', progress: 0, error: null, expires_at: null, output: null, retryable: false });
    track(job);
    say(`Converting ${nameOf(id)} again…`, 'ok');
  } catch {
    say(`Could not retry. ${describe(0)}`, 'error');
  } finally {
    if (button) button.disabled = false;
  }
}

// ------------------------------------------------------------------ download, play, share

/** A signed link to the job's audio (works without the token until it expires). */
async function signedLink(id) {
  const res = await api(`/jobs/${encodeURIComponent(id)}/link`, { method: 'POST' });
  if (res.status === 401) { session.onExpired(); return null; }
  if (!res.ok) { say(`That file is not available. ${describe(res.status, await errorBody(res))}`, 'error'); return null; }
  return res.json();
}

/** The browser downloads the file itself, straight to disk, with its own progress. */
async function download(id, button) {
  button.disabled = true;
  try {
    const link = await signedLink(id);
    if (!link) return;
    const a = document.createElement('a');
    a.href = link.url;
    a.download = '';
    document.body.append(a);
    a.click();
    a.remove();
    say('Downloading…', 'ok');
  } catch {
    say(`Download failed. ${describe(0)}`, 'error');
  } finally {
    button.disabled = false;
  }
}

/** An audio player in the row, streaming from the server (with Range requests). */
async function play(id, button) {
  const li = jobItem(id);
  const holder = li && li.querySelector('.job-player');
  if (!holder) return;
  let audio = holder.querySelector('audio');
  if (!audio) {
    button.disabled = true;
    try {
      const link = await signedLink(id);
      if (!link) return;
      audio = document.createElement('audio');
      audio.controls = true;
      audio.preload = 'metadata';
      audio.src = link.url;
      audio.dataset.testid = 'audio';
      audio.setAttribute('aria-label', `Player for ${nameOf(id)}`);
      holder.append(audio);
      holder.hidden = false;
    } catch {
      say(`Could not play. ${describe(0)}`, 'error');
      return;
    } finally {
      button.disabled = false;
    }
  }
  try { await audio.play(); } catch { /* the controls are there to start it */ }
}

/** Copies a link that anyone can download the file with until it expires. */
async function share(id, button) {
  button.disabled = true;
  try {
    const link = await signedLink(id);
    if (!link) return;
    const url = new URL(link.url, window.location.origin).href;
    const li = jobItem(id);
    let field = li && li.querySelector('.share-link');
    if (li && !field) {
      field = make('input', { className: 'share-link', testid: 'share-link', attrs: { 'aria-label': `Download link for ${nameOf(id)}` } });
      field.type = 'url';
      field.readOnly = true;
      li.querySelector('.job-actions').after(field);
    }
    if (field) { field.value = url; field.select(); }
    const until = formatDate(link.expires_at);
    try {
      await navigator.clipboard.writeText(url);
      say(`Link copied; it works until ${until}.`, 'ok');
    } catch {
      say(`Copy the link below; it works until ${until}.`, 'ok');
    }
  } catch {
    say(`Could not make a link. ${describe(0)}`, 'error');
  } finally {
    button.disabled = false;
  }
}
