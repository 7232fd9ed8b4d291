/**
 * Small things every part of the page shows: the message line (a live region), sizes, times
 * and dates in words, and the confirmation dialog.
 */

const message = document.getElementById('message');

/** Puts `text` in the message line; `kind` is info, ok or error. */
export function say(text, kind = 'info') {
  message.textContent = text;
  message.dataset.kind = kind;
  message.classList.toggle('error', kind === 'error');
  message.classList.toggle('ok', kind === 'ok');
}

/** 1536 → "1.5 KB", 5242880 → "5 MB". */
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  const text = value.toFixed(value < 10 ? 1 : 0).replace(/\.0$/, '');
  return `${text} ${units[unit]}`;
}

/** 65.5 → "1:05.5". */
export function formatTime(secs) {
  const m = Math.floor(secs / 60);
  const sec = secs - m * 60;
  const text = sec.toFixed(3).replace(/\.?0+$/, '');
  return `${m}:${sec < 10 ? '0' : ''}${text}`;
}

/** Unix seconds → the browser's local date and time. */
export function formatDate(unix) {
  return new Date(unix * 1000).toLocaleString();
}

/** An element with a class, a test id and text. */
export function make(tag, { className, testid, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (testid) node.dataset.testid = testid;
  if (text != null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

const dialog = document.getElementById('confirm-dialog');
const dialogTitle = document.getElementById('confirm-title');
const dialogText = document.getElementById('confirm-text');
const dialogOk = document.getElementById('confirm-ok');

/**
 * Asks before something that cannot be undone: a modal dialog that says what will go
 * (`title`, `text`), with Cancel focused first. Resolves to true when confirmed.
 */
export function confirmAction({ title, text, action = 'Delete' }) {
  dialogTitle.textContent = title;
  dialogText.textContent = text;
  dialogOk.textContent = action;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
  });
}
