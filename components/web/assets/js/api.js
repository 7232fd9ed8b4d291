/**
 * The session and the API: the token (kept in localStorage for its lifetime, so every tab of
 * the browser shares it), `fetch` with it, and readable sentences for the API's error answers
 * (`{error, detail}`).
 */

export const TOKEN_KEY = 'mp3edge.token';
export const EMAIL_KEY = 'mp3edge.email';

/** Seconds until the token's `exp` (the payload is read, not trusted: the server checks it). */
function tokenSecondsLeft(value) {
  try {
    const payload = JSON.parse(atob(value.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return payload.exp - Date.now() / 1000;
  } catch {
    return -1;
  }
}

export const session = {
  token: localStorage.getItem(TOKEN_KEY),
  /** The signed-in user's address. */
  get email() { return localStorage.getItem(EMAIL_KEY) || ''; },
  /** The last `GET /users/me` (usage, quota, webhook...), or null. */
  me: null,
  /** Called when the server says the session is over (set by main.js). */
  onExpired: () => {},
};
if (session.token && tokenSecondsLeft(session.token) <= 0) {
  localStorage.removeItem(TOKEN_KEY);
  session.token = null;
}

export function setToken(token, email) {
  session.token = token;
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(EMAIL_KEY, email);
  } else {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(EMAIL_KEY);
    session.me = null;
  }
}

/** fetch with the session token; `credentials: 'omit'` keeps the browser from ever showing
 * its own Basic-auth prompt on a 401. */
export function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (session.token && !headers.has('authorization')) headers.set('authorization', `Bearer ${session.token}`);
  return fetch(path, { ...options, headers, credentials: 'omit', cache: 'no-store' });
}

export function jsonRequest(method, path, body) {
  return api(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

export async function errorBody(res) {
  try { return await res.json(); } catch { return null; }
}

/** `GET /users/me`, kept in `session.me`; null when it cannot be had. */
export async function loadMe() {
  try {
    const res = await api('/users/me');
    if (res.status === 401) { session.onExpired(); return null; }
    if (!res.ok) return null;
    session.me = await res.json();
    return session.me;
  } catch {
    return null;
  }
}

export function formatWait(secs) {
  if (!Number.isFinite(secs) || secs <= 0) return 'a moment';
  if (secs < 90) return `${Math.ceil(secs)} s`;
  return `${Math.ceil(secs / 60)} min`;
}

/** `text` as a sentence: a capital first letter and a full stop. */
export function sentence(text) {
  const t = String(text).trim();
  if (!t) return '';
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

/** A readable sentence for an error answer `{error, detail}` of the API. */
export function describe(status, body, context, headers) {
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
      if (body && body.error === 'quota_exceeded') return `Your storage quota is used up: ${detail}`;
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
    case 409:
      return detail ? sentence(detail) : 'That cannot be done right now.';
    case 0:
      return 'The server cannot be reached. Check your connection and try again.';
    default:
      return `Something went wrong (${status}${detail ? `: ${detail}` : ''}).`;
  }
}
