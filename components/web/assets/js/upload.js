/**
 * Starting conversions: choosing or dropping files (all of them), importing a link, the upload
 * queue (one file at a time through tus, resumable after a lost connection or a reload), the
 * storage quota checked before a file goes up (and said plainly when the server refuses one),
 * and the options reset after each batch unless the user keeps them.
 */

import { api, describe, loadMe, session } from './api.js';
import { formatSize, make, say } from './ui.js';
import { jobOptionsFromParams } from './options.js';
import { addJob } from './jobs.js';
import { refreshUsage } from './account.js';
import { clearPreset } from './presets.js';
import { go } from './nav.js';

const form = document.getElementById('upload-form');
const drop = document.getElementById('drop-zone');
const fileInput = document.getElementById('file-input');
const fileName = document.getElementById('file-name');
const importUrl = document.getElementById('import-url');
const keep = document.getElementById('keep-options');
const advanced = form.querySelector('details.advanced');
const uploadsList = document.getElementById('uploads');
const uploadStatus = document.getElementById('upload-status');
const uploadProgress = document.getElementById('upload-progress');
const uploadPercent = document.getElementById('upload-percent');
const unfinished = document.getElementById('unfinished');

/** Files waiting to be uploaded, one at a time, each with its own row and progress. */
const queue = [];
/** The upload in progress (a tus.Upload), if any. */
let current = null;
let panel = null;

// ------------------------------------------------------------------ the storage quota

/**
 * Why `file` cannot be stored with the account's numbers (`GET /users/me`), in words that say
 * what to do; null when it fits (or the numbers are not known).
 */
export function quotaProblem(file, me) {
  if (!me) return null;
  const { quota_bytes: quota, used_bytes: used, max_upload_bytes: max } = me;
  const size = formatSize(file.size);
  if (max && file.size > max) {
    return `${file.name} (${size}) is larger than the ${formatSize(max)} allowed per file. Trim or compress it first.`;
  }
  if (!quota) return null;
  if (file.size > quota) {
    return `${file.name} (${size}) is larger than your whole storage quota (${formatSize(quota)}), so it cannot be uploaded. `
      + 'Trim or compress it first, or ask your administrator for a larger quota.';
  }
  const free = Math.max(0, quota - (used || 0));
  if (file.size > free) {
    return `${file.name} (${size}) does not fit in the ${formatSize(free)} left of your ${formatSize(quota)} storage quota `
      + `(${formatSize(used)} in use). Delete conversions you no longer need, or wait for them to expire, then try again.`;
  }
  return null;
}

// ------------------------------------------------------------------ choosing files

function showFiles() {
  const files = [...fileInput.files];
  const total = files.reduce((sum, f) => sum + f.size, 0);
  fileName.textContent = files.length === 0 ? 'No file chosen'
    : files.length === 1 ? `${files[0].name} · ${formatSize(files[0].size)}`
      : `${files.length} files · ${formatSize(total)}`;
  drop.classList.toggle('has-file', files.length > 0);
}
fileInput.addEventListener('change', showFiles);

for (const type of ['dragenter', 'dragover']) {
  drop.addEventListener(type, (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    drop.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'dragend']) {
  drop.addEventListener(type, () => drop.classList.remove('dragging'));
}
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('dragging');
  const files = event.dataTransfer && event.dataTransfer.files;
  if (!files || !files.length) return;
  // Every file dropped, as the zone promises.
  const dt = new DataTransfer();
  for (const file of files) dt.items.add(file);
  fileInput.files = dt.files;
  showFiles();
});
// A file dropped beside the zone would make the browser navigate away to it.
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => event.preventDefault());

// ------------------------------------------------------------------ a batch

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const files = [...fileInput.files];
  const link = importUrl.value.trim();
  if (!files.length && !link) {
    say('Choose a video, or give a link to one.', 'error');
    fileInput.focus();
    return;
  }
  const params = panel.params();
  const format = params.get('format') || 'mp3';
  // Fresh numbers: a file that cannot fit is said at once, not after its upload.
  const me = files.length ? await loadMe() : session.me;
  const refused = [];
  let started = 0;
  if (link) { importLink(link, format, params); started += 1; }
  for (const file of files) {
    const problem = quotaProblem(file, me);
    if (problem) { refused.push(problem); continue; }
    queue.push(queueRow({ file, format, params: params.toString(), upload: null }));
    started += 1;
  }
  endBatch();
  if (started) {
    go('jobs');
    nextUpload();
  }
  // Last, so that it is not replaced by the progress of the files that do go up.
  if (refused.length) say(refused.join(' '), 'error');
});

/**
 * After a batch: the files and the link are cleared; the advanced options and the preset are
 * reset too unless "Keep these options" is ticked, so that a tag set for one batch does not
 * land on the next. Format and bitrate, always in view, stay.
 */
function endBatch() {
  fileInput.value = '';
  importUrl.value = '';
  showFiles();
  if (!keep.checked) {
    panel.resetAdvanced();
    clearPreset();
    advanced.open = false;
  }
}

/** A row for a queued file: its name, progress and a cancel button. */
function queueRow(item) {
  const li = make('li', { className: 'upload-item', testid: 'upload-item' });
  const name = make('span', { className: 'upload-name', text: item.file.name });
  const bar = make('progress', { attrs: { max: '100', 'aria-label': `Upload of ${item.file.name}` } });
  bar.value = 0;
  const cancel = make('button', {
    className: 'secondary small', testid: 'upload-cancel', text: 'Cancel',
    attrs: { type: 'button', 'aria-label': `Cancel the upload of ${item.file.name}` },
  });
  cancel.addEventListener('click', () => cancelUpload(item));
  li.append(name, bar, cancel);
  uploadsList.append(li);
  uploadsList.hidden = false;
  return Object.assign(item, { li, bar });
}

function dropRow(item) {
  item.li.remove();
  uploadsList.hidden = uploadsList.children.length === 0;
}

function cancelUpload(item) {
  const waiting = queue.indexOf(item);
  if (waiting >= 0) queue.splice(waiting, 1);
  // Ends the upload on the server too (tus termination): nothing of it stays.
  if (item.upload) item.upload.abort(true).catch(() => {});
  dropRow(item);
  say(`Upload of ${item.file.name} cancelled.`, 'info');
  if (current === item.upload) {
    current = null;
    setUploading(false);
    nextUpload();
  }
  showUnfinished();
}

/** Stops every upload (signed out). */
export function stopUploads() {
  queue.length = 0;
  if (current) current.abort();
  current = null;
  uploadsList.replaceChildren();
  uploadsList.hidden = true;
  setUploading(false);
}

/**
 * Imports the file at `link`: the server fetches it (only from public addresses), and the job
 * follows like an upload's. A refused link is said at once.
 */
async function importLink(link, format, params) {
  const query = new URLSearchParams(params);
  query.set('url', link);
  say(`Importing ${link}…`);
  let res;
  try {
    res = await api(`/upload?${query}`, { method: 'POST' });
  } catch {
    say(`The import of ${link} failed. ${describe(0)}`, 'error');
    return;
  }
  if (res.status === 401) { session.onExpired(); return; }
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (res.status !== 202 || !body || !body.job_id) {
    say(`The import of ${link} failed. ${describe(res.status, body, 'upload', res.headers)}`, 'error');
    return;
  }
  const name = decodeURIComponent(new URL(link).pathname.split('/').pop() || 'import');
  say(`Importing ${name}. Converting to ${format.toUpperCase()} once it is here…`, 'ok');
  addJob({
    id: body.job_id, source_name: name, status: 'uploading', progress: 0,
    options: jobOptionsFromParams(params), created_at: Math.floor(Date.now() / 1000),
  });
}

/** Speed and time left of an upload, from its progress since it (re)started. */
function pace(item, sent, total) {
  const now = performance.now();
  if (!item.since || sent < item.sentAt) Object.assign(item, { since: now, sentAt: sent });
  const seconds = (now - item.since) / 1000;
  const rate = seconds > 0.5 ? (sent - item.sentAt) / seconds : 0;
  if (!rate) return '';
  const left = Math.max(0, Math.round((total - sent) / rate));
  const eta = left >= 90 ? `${Math.round(left / 60)} min` : `${left} s`;
  return ` · ${formatSize(rate)}/s · ${eta} left`;
}

function setUploading(active, percent = 0, pacing = '') {
  uploadStatus.hidden = !active;
  uploadProgress.value = percent;
  uploadPercent.textContent = `${percent}%${pacing}`;
}

/** The server refused `file` for the quota: the account's fresh numbers say why. */
async function quotaRefusal(file, body) {
  const me = await loadMe();
  const problem = quotaProblem(file, me);
  if (problem) return problem;
  return `${file.name} was not uploaded. ${describe(413, body)}`;
}

/**
 * Uploads the next queued file through tus (tus-js-client): the file goes in parts that the
 * server keeps as they arrive, so a dropped connection resumes where it stopped (retrying on
 * its own), and so does an upload started again after a reload (the browser remembers the
 * upload's URL by the file; choosing the same file resumes it).
 */
function nextUpload() {
  if (current || !queue.length) return;
  const item = queue.shift();
  const { file, format } = item;
  const metadata = { filename: file.name, filetype: file.type || 'application/octet-stream' };
  for (const [name, value] of new URLSearchParams(item.params)) metadata[name] = value;
  const upload = new tus.Upload(file, {
    endpoint: '/uploads',
    headers: { Authorization: `Bearer ${session.token}` },
    metadata,
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000],
    removeFingerprintOnSuccess: true,
    onProgress(sent, total) {
      const percent = total ? Math.floor((sent / total) * 100) : 0;
      item.bar.value = percent;
      setUploading(true, percent, pace(item, sent, total));
    },
    onShouldRetry(err) {
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      if (status === 401) return false;
      // No answer (offline), or the server busy or gone for a moment: try again.
      return status === 0 || status === 409 || status === 423 || status >= 500;
    },
    onSuccess() {
      const id = upload.url.split('/').pop();
      dropRow(item);
      say(`${file.name} uploaded. Converting to ${format.toUpperCase()}…`, 'ok');
      addJob({
        id, source_name: file.name, status: 'queued', progress: 0,
        options: jobOptionsFromParams(new URLSearchParams(item.params)), created_at: Math.floor(Date.now() / 1000),
      });
      refreshUsage();
      done();
    },
    async onError(err) {
      const res = err.originalResponse;
      const status = res ? res.getStatus() : 0;
      dropRow(item);
      if (status === 401) { session.onExpired(); return; }
      let body = null;
      try { body = JSON.parse(res.getBody()); } catch { /* not JSON */ }
      done();
      if (status === 413 && body && body.error === 'quota_exceeded') {
        say(await quotaRefusal(file, body), 'error');
        return;
      }
      const headers = { get: (name) => (res ? res.getHeader(name) : null) };
      say(`Upload of ${file.name} failed. ${describe(status, body, 'upload', headers)}`, 'error');
    },
  });
  item.upload = upload;
  current = upload;
  setUploading(true, 0);
  say(`Uploading ${file.name}…`);
  function done() {
    if (current === upload) current = null;
    item.upload = null;
    setUploading(false);
    showUnfinished();
    nextUpload();
  }
  // An upload of this very file that stopped earlier (this tab or one before a reload) goes
  // on from where the server has it.
  upload.findPreviousUploads().then((previous) => {
    if (previous.length) {
      upload.resumeFromPreviousUpload(previous[0]);
      say(`Resuming the upload of ${file.name}…`);
    }
    upload.start();
  });
}

/** Lists the uploads the browser remembers as unfinished (say, before a reload). */
export async function showUnfinished() {
  let stored = [];
  try { stored = await tus.defaultOptions.urlStorage.findAllUploads(); } catch { /* storage off */ }
  const names = stored.map((s) => s.metadata && s.metadata.filename).filter(Boolean);
  const busy = current ? current.file.name : null;
  const waiting = names.filter((name) => name !== busy);
  unfinished.hidden = waiting.length === 0;
  unfinished.textContent = waiting.length
    ? `Unfinished upload${waiting.length > 1 ? 's' : ''}: ${waiting.join(', ')}. Choose the same file${waiting.length > 1 ? 's' : ''} again to go on from where ${waiting.length > 1 ? 'they' : 'it'} stopped.`
    : '';
}

/** Wires the form to the options `optionsPanel` shows. */
export function initUpload(optionsPanel) {
  panel = optionsPanel;
}
