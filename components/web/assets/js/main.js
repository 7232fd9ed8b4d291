/**
 * mp3edge in the browser: signing in and out (in every tab at once), and starting the other
 * modules once signed in. Plain ES modules, no build step; tus-js-client's browser build is
 * the one script from elsewhere (a global `tus`, loaded before this).
 */

import { TOKEN_KEY, api, describe, errorBody, session, setToken } from './api.js';
import { say } from './ui.js';
import * as nav from './nav.js';
import { OptionsPanel, loadFormats } from './options.js';
import { initPresets, loadPresets, forget as forgetPresets } from './presets.js';
import { initUpload, showUnfinished, stopUploads } from './upload.js';
import { initRetry, loadJobs, resetJobs } from './jobs.js';
import { forgetAccount, refreshUsage, showAccount } from './account.js';
import { forgetUsers, loadUsers } from './users.js';
import { forgetTokens, loadTokens } from './tokens.js';

const who = document.getElementById('who');
const userEmail = document.getElementById('user-email');
const loginView = document.getElementById('login-view');
const loginForm = document.getElementById('login-form');
const emailInput = document.getElementById('email');
const passwordInput = document.getElementById('password');
const loginSubmit = document.getElementById('login-submit');
const appView = document.getElementById('app-view');

const optionsRoot = document.getElementById('options');
// The retry dialog's copy is taken before the upload form's panel changes anything.
initRetry(optionsRoot);
const panel = new OptionsPanel(optionsRoot);
initUpload(panel);
initPresets(panel);
loadFormats();

nav.onShow('account', () => { showAccount(); loadTokens(); });
nav.onShow('users', () => { loadUsers(); });

async function showSignedIn() {
  loginView.hidden = true;
  appView.hidden = false;
  who.hidden = false;
  userEmail.textContent = session.email;
  nav.start();
  loadJobs(1);
  loadPresets();
  showUnfinished();
  const me = await refreshUsage();
  nav.setAdmin(Boolean(me && me.admin));
}

function showSignedOut() {
  appView.hidden = true;
  who.hidden = true;
  loginView.hidden = false;
  nav.stop();
}

function signOut() {
  setToken(null);
  stopUploads();
  resetJobs();
  forgetPresets();
  forgetAccount();
  forgetTokens();
  forgetUsers();
  showSignedOut();
}

session.onExpired = () => {
  signOut();
  say('Your session has expired. Please sign in again.', 'error');
};

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = emailInput.value.trim();
  const password = passwordInput.value;
  loginSubmit.disabled = true;
  say('Signing in…');
  try {
    // HTTP Basic wants Latin-1 in btoa; encode UTF-8 first so any password works.
    const basic = btoa(String.fromCharCode(...new TextEncoder().encode(`${email}:${password}`)));
    const res = await fetch('/login', {
      method: 'POST', headers: { authorization: `Basic ${basic}` }, credentials: 'omit', cache: 'no-store',
    });
    if (!res.ok) {
      say(describe(res.status, await errorBody(res), 'login', res.headers), 'error');
      passwordInput.select();
      passwordInput.focus();
      return;
    }
    setToken((await res.text()).trim(), email);
    passwordInput.value = '';
    say(`Signed in as ${email}.`, 'ok');
    showSignedIn();
    if (nav.currentView() === 'convert') document.getElementById('file-input').focus();
  } catch {
    say(describe(0), 'error');
  } finally {
    loginSubmit.disabled = false;
  }
});

// Another tab signed in or out: follow it.
window.addEventListener('storage', (event) => {
  if (event.key !== TOKEN_KEY) return;
  if (!event.newValue && session.token) { signOut(); say('Signed out in another tab.', 'info'); }
  if (event.newValue && !session.token) {
    session.token = event.newValue;
    showSignedIn();
  }
  // A new session after a password change in another tab (the old one has ended).
  if (event.newValue && session.token && event.newValue !== session.token) session.token = event.newValue;
});

// The server ends the session too (`POST /logout`), so a copy of the token is worth nothing;
// the page signs out whether or not the server could be reached.
document.getElementById('sign-out').addEventListener('click', async () => {
  const ending = api('/logout', { method: 'POST' }).catch(() => null);
  signOut();
  say('Signed out.');
  emailInput.focus();
  const res = await ending;
  if (!res || (res.status !== 204 && res.status !== 401)) {
    say('Signed out on this page; the server could not be told, so the session ends when it expires.', 'error');
  }
});

if (session.token) showSignedIn(); else showSignedOut();
