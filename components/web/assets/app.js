// mp3edge browser app: sign in, upload a video, follow its conversion, download the audio.
// Plain JS, no build step. The session token lives in localStorage for its lifetime, so every
// tab of the browser shares it; signing out in one tab signs out all of them.
'use strict';

(() => {
  const TOKEN_KEY = 'mp3edge.token';
  const EMAIL_KEY = 'mp3edge.email';
  const LOSSLESS = new Set(['wav', 'flac', 'aiff', 'alac', 'pcm']);
  const FINAL = new Set(['done', 'failed']);
  const POLL_MS = 1000;
  // Browsers allow ~6 HTTP/1.1 connections per host: keep some for uploads and downloads.
  const MAX_STREAMS = 3;

  const $ = (id) => document.getElementById(id);
  const el = {
    who: $('who'), userEmail: $('user-email'), signOut: $('sign-out'), message: $('message'),
    loginView: $('login-view'), loginForm: $('login-form'), email: $('email'), password: $('password'),
    loginSubmit: $('login-submit'), appView: $('app-view'), uploadForm: $('upload-form'),
    drop: $('drop-zone'), fileInput: $('file-input'), fileName: $('file-name'), format: $('format'),
    bitrate: $('bitrate'), uploadSubmit: $('upload-submit'), uploadStatus: $('upload-status'),
    uploadProgress: $('upload-progress'), uploadPercent: $('upload-percent'), jobs: $('jobs'),
    unfinished: $('unfinished'), importUrl: $('import-url'),
    jobsEmpty: $('jobs-empty'), refresh: $('refresh-jobs'),
  };

  /** Seconds until the token's `exp` (the payload is read, not trusted: the server checks it). */
  function tokenSecondsLeft(value) {
    try {
      const payload = JSON.parse(atob(value.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      return payload.exp - Date.now() / 1000;
    } catch {
      return -1;
    }
  }

  let token = localStorage.getItem(TOKEN_KEY);
  if (token && tokenSecondsLeft(token) <= 0) {
    localStorage.removeItem(TOKEN_KEY);
    token = null;
  }
  /** job id → {job, streaming: EventSource|null, timer: number|null} */
  const tracked = new Map();
  let activeStreams = 0;
  /** The upload in progress (a tus.Upload), if any. */
  let uploadXhr = null;

  // ------------------------------------------------------------------ messages

  function say(text, kind = 'info') {
    el.message.textContent = text;
    el.message.dataset.kind = kind;
    el.message.classList.toggle('error', kind === 'error');
    el.message.classList.toggle('ok', kind === 'ok');
  }

  /** A readable sentence for an error answer `{error, detail}` of the API. */
  function describe(status, body, context, headers) {
    const detail = body && (body.detail || body.error);
    switch (status) {
      case 401:
        return context === 'login' ? 'Wrong email or password.' : 'Your session has expired. Please sign in again.';
      case 429: {
        if (body && body.error === 'too many jobs') return detail;
        const wait = headers && headers.get('retry-after');
        return `Too many attempts. Please wait${wait ? ` ${formatWait(+wait)}` : ' a while'} and try again.`;
      }
      case 413:
        if (body && body.error === 'quota_exceeded') return `Your storage is full: ${detail}`;
        return `That file is too large${detail ? ` (${detail})` : ''}.`;
      case 507:
        return 'The service has no room for this file right now. Please try again later.';
      case 415:
        return `That kind of file is not supported${detail ? `: ${detail}` : ''}.`;
      case 400:
        return `The server could not accept that${detail ? `: ${detail}` : ''}.`;
      case 403:
        return 'You are not allowed to do that.';
      case 404:
        return 'Not found: it may have been deleted.';
      case 0:
        return 'The server cannot be reached. Check your connection and try again.';
      default:
        return `Something went wrong (${status}${detail ? `: ${detail}` : ''}).`;
    }
  }

  function formatWait(secs) {
    if (!Number.isFinite(secs) || secs <= 0) return 'a moment';
    if (secs < 90) return `${Math.ceil(secs)} s`;
    return `${Math.ceil(secs / 60)} min`;
  }

  async function errorBody(res) {
    try { return await res.json(); } catch { return null; }
  }

  // ------------------------------------------------------------------ API

  /** fetch with the session token; `credentials: 'omit'` keeps the browser from ever showing
   * its own Basic-auth prompt on a 401. */
  function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    if (token && !headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    return fetch(path, { ...options, headers, credentials: 'omit', cache: 'no-store' });
  }

  function sessionExpired() {
    signOut();
    say('Your session has expired. Please sign in again.', 'error');
  }

  // ------------------------------------------------------------------ sign in / out

  function showSignedIn() {
    el.loginView.hidden = true;
    el.appView.hidden = false;
    el.who.hidden = false;
    el.userEmail.textContent = localStorage.getItem(EMAIL_KEY) || '';
    loadFormats();
    loadJobs();
    loadUsage();
    loadUsers().catch(() => { adminView.hidden = true; });
    showUnfinished();
  }

  // ------------------------------------------------------------------ account and users

  const adminView = document.getElementById('admin-view');

  async function jsonRequest(method, path, body) {
    return api(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  document.getElementById('password-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const current = document.getElementById('current-password');
    const next = document.getElementById('new-password');
    try {
      const res = await jsonRequest('PUT', '/users/me/password', { current_password: current.value, new_password: next.value });
      if (res.status === 401) { sessionExpired(); return; }
      if (res.status !== 204) {
        const body = await errorBody(res);
        say(`Password not changed: ${(body && body.detail) || res.status}.`, 'error');
        return;
      }
      event.target.reset();
      say('Your password has been changed.', 'ok');
    } catch {
      say(`Password not changed. ${describe(0)}`, 'error');
    }
  });

  async function loadUsers() {
    const list = document.getElementById('users');
    const res = await api('/users?limit=200');
    if (res.status === 403 || res.status === 401) { adminView.hidden = true; return; }
    if (!res.ok) return;
    adminView.hidden = false;
    list.replaceChildren();
    for (const user of await res.json()) {
      const li = document.createElement('li');
      li.className = 'user';
      li.dataset.email = user.email;
      li.dataset.testid = 'user';
      const name = document.createElement('span');
      name.className = 'user-name';
      name.textContent = `${user.email}${user.admin ? ' · admin' : ''}${user.active ? '' : ' · deactivated'}`;
      li.append(name);
      const action = (label, change) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'secondary small';
        button.textContent = label;
        button.setAttribute('aria-label', `${label}: ${user.email}`);
        button.addEventListener('click', async () => {
          const res = await jsonRequest('PATCH', `/users/${encodeURIComponent(user.email)}`, change);
          if (!res.ok) {
            const body = await errorBody(res);
            say(`${label} failed: ${(body && body.detail) || res.status}.`, 'error');
            return;
          }
          say(`${label}: done for ${user.email}.`, 'ok');
          loadUsers();
        });
        li.append(button);
      };
      action(user.active ? 'Deactivate' : 'Activate', { active: !user.active });
      action(user.admin ? 'Remove admin' : 'Make admin', { admin: !user.admin });
      action('Unlock', { unlock: true });
      list.append(li);
    }
  }

  document.getElementById('user-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = document.getElementById('new-user-email');
    const password = document.getElementById('new-user-password');
    const res = await jsonRequest('POST', '/users', { email: email.value.trim(), password: password.value });
    if (res.status !== 201) {
      const body = await errorBody(res);
      say(`User not created: ${(body && body.detail) || res.status}.`, 'error');
      return;
    }
    say(`Created ${email.value.trim()}.`, 'ok');
    event.target.reset();
    loadUsers();
  });

  // ------------------------------------------------------------------ storage used

  async function loadUsage() {
    const usage = document.getElementById('usage');
    try {
      const res = await api('/users/me');
      if (!res.ok) return;
      const me = await res.json();
      if (typeof me.used_bytes !== 'number') return;
      usage.textContent = me.quota_bytes
        ? `Storage: ${formatSize(me.used_bytes)} of ${formatSize(me.quota_bytes)} used`
        : `Storage: ${formatSize(me.used_bytes)} used`;
      if (me.max_upload_bytes) {
        maxUploadBytes = me.max_upload_bytes;
        document.getElementById('size-limit').textContent = `Up to ${formatSize(me.max_upload_bytes)} per file; several files at once are fine.`;
      }
      usage.hidden = false;
    } catch { /* shown again at the next refresh */ }
  }

  function showSignedOut() {
    el.appView.hidden = true;
    el.who.hidden = true;
    el.loginView.hidden = false;
  }

  el.loginForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = el.email.value.trim();
    const password = el.password.value;
    el.loginSubmit.disabled = true;
    say('Signing in…');
    try {
      // HTTP Basic wants Latin-1 in btoa; encode UTF-8 first so any password works.
      const basic = btoa(String.fromCharCode(...new TextEncoder().encode(`${email}:${password}`)));
      const res = await fetch('/login', {
        method: 'POST', headers: { authorization: `Basic ${basic}` }, credentials: 'omit', cache: 'no-store',
      });
      if (!res.ok) {
        say(describe(res.status, await errorBody(res), 'login', res.headers), 'error');
        el.password.select();
        el.password.focus();
        return;
      }
      token = (await res.text()).trim();
      localStorage.setItem(TOKEN_KEY, token);
      localStorage.setItem(EMAIL_KEY, email);
      el.password.value = '';
      say(`Signed in as ${email}.`, 'ok');
      showSignedIn();
      el.fileInput.focus();
    } catch {
      say(describe(0), 'error');
    } finally {
      el.loginSubmit.disabled = false;
    }
  });

  function signOut() {
    token = null;
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(EMAIL_KEY);
    queue.length = 0;
    if (uploadXhr) uploadXhr.abort();
    uploadXhr = null;
    for (const id of tracked.keys()) stopTracking(id);
    tracked.clear();
    el.jobs.replaceChildren();
    el.jobsEmpty.hidden = false;
    adminView.hidden = true;
    showSignedOut();
  }

  // Another tab signed in or out: follow it.
  window.addEventListener('storage', (event) => {
    if (event.key !== TOKEN_KEY) return;
    if (!event.newValue && token) { signOut(); say('Signed out in another tab.', 'info'); }
    if (event.newValue && !token) { token = event.newValue; showSignedIn(); }
  });

  el.signOut.addEventListener('click', () => {
    signOut();
    say('Signed out.');
    el.email.focus();
  });

  // ------------------------------------------------------------------ formats

  async function loadFormats() {
    try {
      const res = await fetch('/formats', { credentials: 'omit', cache: 'no-store' });
      if (!res.ok) return;
      const formats = await res.json();
      if (!Array.isArray(formats) || !formats.length) return;
      const previous = el.format.value || 'mp3';
      el.format.replaceChildren(...formats.map((f) => {
        const option = document.createElement('option');
        option.value = f.format;
        option.textContent = f.format.toUpperCase() + (f.extension && f.extension !== f.format ? ` (.${f.extension})` : '');
        return option;
      }));
      el.format.value = formats.some((f) => f.format === previous) ? previous : formats[0].format;
      formatInfo = new Map(formats.map((f) => [f.format, f]));
      updateBitrate();
    } catch { /* the default option stays */ }
  }

  // What each format's plugin takes (GET /formats): choices it would refuse are disabled, e.g.
  // VBR for Opus, which has bitrates only.
  let formatInfo = new Map();

  function updateBitrate() {
    el.bitrate.disabled = LOSSLESS.has(el.format.value);
    const info = formatInfo.get(el.format.value);
    for (const option of el.bitrate.options) {
      const vbr = option.value.startsWith('vbr:');
      option.disabled = Boolean(info) && (vbr ? info.vbr === false
        : Array.isArray(info.bitrates) && !info.bitrates.includes(Number(option.value)));
    }
    if (el.bitrate.selectedOptions[0]?.disabled) {
      const usable = [...el.bitrate.options].find((option) => !option.disabled);
      if (usable) el.bitrate.value = usable.value;
    }
  }
  el.format.addEventListener('change', updateBitrate);

  // ------------------------------------------------------------------ choosing a file

  function showFile() {
    const files = [...el.fileInput.files];
    const total = files.reduce((sum, f) => sum + f.size, 0);
    el.fileName.textContent = files.length === 0 ? 'No file chosen'
      : files.length === 1 ? `${files[0].name} · ${formatSize(files[0].size)}`
        : `${files.length} files · ${formatSize(total)}`;
    el.drop.classList.toggle('has-file', files.length > 0);
  }
  el.fileInput.addEventListener('change', showFile);

  for (const type of ['dragenter', 'dragover']) {
    el.drop.addEventListener(type, (event) => {
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
      el.drop.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'dragend']) {
    el.drop.addEventListener(type, () => el.drop.classList.remove('dragging'));
  }
  el.drop.addEventListener('drop', (event) => {
    event.preventDefault();
    el.drop.classList.remove('dragging');
    const files = event.dataTransfer.files;
    if (!files || !files.length) return;
    const dt = new DataTransfer();
    dt.items.add(files[0]);
    el.fileInput.files = dt.files;
    showFile();
  });
  // A file dropped beside the zone would make the browser navigate away to it.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());

  function formatSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    const units = ['KB', 'MB', 'GB'];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
  }

  /** The audio options of a job in a few words, e.g. "0:05–1:30 · mono · −16 LUFS (measured −23.4)". */
  function optionsSummary(job) {
    const o = job.options || {};
    const time = (secs) => {
      const m = Math.floor(secs / 60);
      const sec = secs - m * 60;
      const text = sec.toFixed(3).replace(/\.?0+$/, '');
      return `${m}:${sec < 10 ? '0' : ''}${text}`;
    };
    const parts = [];
    if (o.start_secs != null || o.end_secs != null) parts.push(`${time(o.start_secs || 0)}–${o.end_secs != null ? time(o.end_secs) : 'end'}`);
    if (o.sample_rate) parts.push(`${o.sample_rate / 1000} kHz`);
    if (o.channels) parts.push(o.channels === 1 ? 'mono' : 'stereo');
    if (o.track != null) parts.push(`track ${o.track}`);
    if (o.normalize) {
      const l = job.loudness;
      const measured = !l ? '' : l.measured_lufs != null ? ` (measured ${l.measured_lufs.toFixed(1)})` : ' (silent)';
      parts.push(`${o.normalize.target_lufs} LUFS${measured}`);
    }
    if (o.cover === false) parts.push('no cover');
    return parts.join(' · ');
  }

  // ------------------------------------------------------------------ upload

  /** Files waiting to be uploaded, one at a time, each with its own row and progress. */
  const queue = [];
  const uploadsList = document.getElementById('uploads');
  let maxUploadBytes = null;

  el.uploadForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const files = [...el.fileInput.files];
    const link = el.importUrl.value.trim();
    if (!files.length && !link) {
      say('Choose a video, or give a link to one.', 'error');
      el.fileInput.focus();
      return;
    }
    const format = el.format.value;
    const params = new URLSearchParams({ format });
    if (!el.bitrate.disabled) {
      const choice = el.bitrate.value;
      if (choice.startsWith('vbr:')) params.set('vbr', choice.slice(4)); else params.set('bitrate', choice);
    }
    const advanced = [...el.uploadForm.querySelectorAll('[data-option]')];
    for (const input of advanced) {
      const name = input.dataset.option;
      if (input.type === 'checkbox') {
        if (!input.checked) params.set(name, 'none');
      } else if (input.value.trim()) {
        params.set(name, input.value.trim());
      }
    }
    // The advanced choices outlive the form reset below (they usually apply to a series).
    const kept = advanced.map((input) => [input, input.type === 'checkbox' ? input.checked : input.value]);
    if (link) importLink(link, format, params);
    for (const file of files) {
      if (maxUploadBytes && file.size > maxUploadBytes) {
        say(`${file.name} is too large: the limit is ${formatSize(maxUploadBytes)}.`, 'error');
        continue;
      }
      queue.push(queueRow({ file, format, params: params.toString(), xhr: null }));
    }
    el.uploadForm.reset();
    for (const [input, value] of kept) {
      if (input.type === 'checkbox') input.checked = value; else input.value = value;
    }
    el.format.value = format;
    updateBitrate();
    showFile();
    nextUpload();
  });

  /** A row for a queued file: its name, progress and a cancel button. */
  function queueRow(item) {
    const li = document.createElement('li');
    li.className = 'upload-item';
    li.dataset.testid = 'upload-item';
    const name = document.createElement('span');
    name.className = 'upload-name';
    name.textContent = item.file.name;
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute('aria-label', `Upload of ${item.file.name}`);
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'secondary small';
    cancel.textContent = 'Cancel';
    cancel.dataset.testid = 'upload-cancel';
    cancel.setAttribute('aria-label', `Cancel the upload of ${item.file.name}`);
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
    if (item.xhr) item.xhr.abort(true).catch(() => {});
    dropRow(item);
    say(`Upload of ${item.file.name} cancelled.`, 'info');
    if (uploadXhr === item.xhr) {
      uploadXhr = null;
      setUploading(false);
      nextUpload();
    }
    showUnfinished();
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
    if (res.status === 401) { sessionExpired(); return; }
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (res.status !== 202 || !body || !body.job_id) {
      say(`The import of ${link} failed. ${describe(res.status, body, 'upload', res.headers)}`, 'error');
      return;
    }
    const name = decodeURIComponent(new URL(link).pathname.split('/').pop() || 'import');
    say(`Importing ${name}. Converting to ${format.toUpperCase()} once it is here…`, 'ok');
    const job = {
      id: body.job_id, source_name: name, status: 'uploading', progress: 0,
      options: { format }, created_at: Math.floor(Date.now() / 1000),
    };
    upsertJob(job, true);
    track(job);
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

  /**
   * Uploads the next queued file through tus (tus-js-client): the file goes in parts that the
   * server keeps as they arrive, so a dropped connection resumes where it stopped (retrying on
   * its own), and so does an upload started again after a reload (the browser remembers the
   * upload's URL by the file; choosing the same file resumes it).
   */
  function nextUpload() {
    if (uploadXhr || !queue.length) return;
    const item = queue.shift();
    const { file, format } = item;
    const metadata = { filename: file.name, filetype: file.type || 'application/octet-stream' };
    for (const [name, value] of new URLSearchParams(item.params)) metadata[name] = value;
    const upload = new tus.Upload(file, {
      endpoint: '/uploads',
      headers: { Authorization: `Bearer ${token}` },
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
        const job = {
          id, source_name: file.name, status: 'queued', progress: 0,
          options: { format }, created_at: Math.floor(Date.now() / 1000),
        };
        upsertJob(job, true);
        track(job);
        loadUsage();
        done();
      },
      onError(err) {
        const res = err.originalResponse;
        const status = res ? res.getStatus() : 0;
        dropRow(item);
        if (status === 401) { sessionExpired(); return; }
        let body = null;
        try { body = JSON.parse(res.getBody()); } catch { /* not JSON */ }
        const headers = { get: (name) => (res ? res.getHeader(name) : null) };
        say(`Upload of ${file.name} failed. ${describe(status, body, 'upload', headers)}`, 'error');
        done();
      },
    });
    item.xhr = upload;
    uploadXhr = upload;
    setUploading(true, 0);
    say(`Uploading ${file.name}…`);
    function done() {
      if (uploadXhr === upload) uploadXhr = null;
      item.xhr = null;
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
  async function showUnfinished() {
    let stored = [];
    try { stored = await tus.defaultOptions.urlStorage.findAllUploads(); } catch { /* storage off */ }
    const names = stored.map((s) => s.metadata && s.metadata.filename).filter(Boolean);
    const busy = uploadXhr ? uploadXhr.file.name : null;
    const waiting = names.filter((name) => name !== busy);
    el.unfinished.hidden = waiting.length === 0;
    el.unfinished.textContent = waiting.length
      ? `Unfinished upload${waiting.length > 1 ? 's' : ''}: ${waiting.join(', ')}. Choose the same file${waiting.length > 1 ? 's' : ''} again to go on from where ${waiting.length > 1 ? 'they' : 'it'} stopped.`
      : '';
  }

  function setUploading(active, percent = 0, pacing = '') {
    el.uploadStatus.hidden = !active;
    el.uploadProgress.value = percent;
    el.uploadPercent.textContent = `${percent}%${pacing}`;
  }

  // ------------------------------------------------------------------ jobs list

  const PAGE = 50;
  let loadedJobs = 0;
  const moreJobs = document.getElementById('more-jobs');

  async function loadJobs(more = false) {
    try {
      if (!more) loadedJobs = 0;
      const res = await api(`/jobs?limit=${PAGE}&offset=${loadedJobs}`);
      if (res.status === 401) { sessionExpired(); return; }
      if (!res.ok) { say(`Could not load your conversions. ${describe(res.status, await errorBody(res))}`, 'error'); return; }
      const jobs = await res.json();
      loadedJobs += jobs.length;
      moreJobs.hidden = jobs.length < PAGE;
      if (!more) jobs.sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
      for (const job of jobs) {
        upsertJob(job, !more);
        if (!FINAL.has(job.status)) track(job);
      }
    } catch {
      say(`Could not load your conversions. ${describe(0)}`, 'error');
    }
  }
  el.refresh.addEventListener('click', () => loadJobs());
  moreJobs.addEventListener('click', () => loadJobs(true));

  function jobItem(id) {
    return el.jobs.querySelector(`li[data-job-id="${CSS.escape(id)}"]`);
  }

  /** Adds or updates the job's row; new rows go on top when `prepend`. */
  function upsertJob(job, prepend = false) {
    let li = jobItem(job.id);
    if (!li) {
      li = document.createElement('li');
      li.className = 'job';
      li.dataset.jobId = job.id;
      li.dataset.testid = 'job';
      li.innerHTML = `
        <div class="job-main">
          <span class="job-name" data-testid="job-name"></span>
          <span class="job-meta" data-testid="job-meta"></span>
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
      li.querySelector('.download').addEventListener('click', (event) => download(li.dataset.jobId, event.currentTarget));
      li.querySelector('.play').addEventListener('click', (event) => play(li.dataset.jobId, event.currentTarget));
      li.querySelector('.share').addEventListener('click', (event) => share(li.dataset.jobId, event.currentTarget));
      li.querySelector('.retry').addEventListener('click', (event) => retryJob(li.dataset.jobId, event.currentTarget));
      li.querySelector('.delete').addEventListener('click', (event) => deleteJob(li.dataset.jobId, event.currentTarget));
      if (prepend) el.jobs.prepend(li); else el.jobs.append(li);
    }
    const previous = tracked.get(job.id);
    const merged = { ...(previous ? previous.job : {}), ...job };
    if (previous) previous.job = merged;

    const name = merged.source_name || merged.id;
    const format = merged.options && merged.options.format;
    const status = merged.status || 'queued';
    const progress = status === 'done' ? 100 : Math.max(0, Math.min(100, merged.progress || 0));
    li.dataset.status = status;
    li.querySelector('.job-name').textContent = name;
    li.querySelector('.job-meta').textContent = [
      format ? `→ ${format.toUpperCase()}` : '',
      optionsSummary(merged),
      merged.created_at ? new Date(merged.created_at * 1000).toLocaleString() : '',
      merged.output && merged.output.size ? formatSize(merged.output.size) : '',
      merged.expires_at ? `expires ${new Date(merged.expires_at * 1000).toLocaleString()}` : '',
    ].filter(Boolean).join(' · ');
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
    li.querySelector('.share').setAttribute('aria-label', `Copy a download link for ${name}`);
    const retry = li.querySelector('.retry');
    retry.hidden = status !== 'failed' || Boolean(merged.source_freed);
    retry.setAttribute('aria-label', `Retry ${name}`);
    li.querySelector('.delete').setAttribute('aria-label', `Delete ${name}`);
    el.jobsEmpty.hidden = el.jobs.children.length > 0;
    return merged;
  }

  // ------------------------------------------------------------------ live status

  function track(job) {
    const id = job.id;
    if (tracked.has(id)) return;
    const entry = { job: { ...job }, stream: null, timer: null };
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
    const url = `/jobs/${encodeURIComponent(id)}/events?access_token=${encodeURIComponent(token)}`;
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
        if (res.status === 401) { sessionExpired(); return; }
        if (res.status === 404) { finish(id); return; }
        if (res.ok) update(id, await res.json());
      } catch { /* offline for a moment: try again */ }
      if (tracked.get(id) === entry && !FINAL.has(entry.job.status)) entry.timer = setTimeout(tick, POLL_MS);
    };
    entry.timer = setTimeout(tick, entry.job.status ? POLL_MS : 0);
  }

  function update(id, data) {
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
      loadUsage();
      // Events carry the status only: fetch the record once for the output's details.
      if (job.status === 'done' && !job.output) refreshJob(id);
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

  async function deleteJob(id, button) {
    button.disabled = true;
    try {
      const res = await api(`/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
      if (res.status === 401) { sessionExpired(); return; }
      if (res.status !== 204 && res.status !== 404) {
        say(`Could not delete. ${describe(res.status, await errorBody(res))}`, 'error');
        return;
      }
      const li = jobItem(id);
      const name = (tracked.get(id) && tracked.get(id).job.source_name) || (li && li.querySelector('.job-name').textContent) || id;
      finish(id);
      if (li) li.remove();
      el.jobsEmpty.hidden = el.jobs.children.length > 0;
      say(`Deleted ${name}.`, 'ok');
      loadUsage();
    } catch {
      say(`Could not delete. ${describe(0)}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  async function retryJob(id, button) {
    button.disabled = true;
    try {
      const res = await api(`/jobs/${encodeURIComponent(id)}/retry`, { method: 'POST' });
      if (res.status === 401) { sessionExpired(); return; }
      if (res.status !== 202) { say(`Could not retry. ${describe(res.status, await errorBody(res))}`, 'error'); return; }
      const job = upsertJob({ id, status: 'queued', progress: 0, error: null, expires_at: null });
      track(job);
      say('Converting again…', 'ok');
    } catch {
      say(`Could not retry. ${describe(0)}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ download

  /** A signed link to the job's audio (works without the token until it expires). */
  async function signedLink(id) {
    const res = await api(`/jobs/${encodeURIComponent(id)}/link`, { method: 'POST' });
    if (res.status === 401) { sessionExpired(); return null; }
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
        audio.setAttribute('aria-label', `Player for ${li.querySelector('.job-name').textContent}`);
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
        field = document.createElement('input');
        field.type = 'url';
        field.readOnly = true;
        field.className = 'share-link';
        field.dataset.testid = 'share-link';
        field.setAttribute('aria-label', 'Download link');
        li.querySelector('.job-actions').after(field);
      }
      if (field) { field.value = url; field.select(); }
      const until = new Date(link.expires_at * 1000).toLocaleString();
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

  // ------------------------------------------------------------------ start

  if (token) showSignedIn(); else showSignedOut();
})();
