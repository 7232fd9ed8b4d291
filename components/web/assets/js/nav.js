/**
 * The page's sections as views, one at a time, picked by the navigation bar and deep-linkable
 * by the address's hash (`#/convert`, `#/jobs`, `#/account`, `#/users`); the browser's back and
 * forward buttons walk through them. Users is for administrators only.
 */

const ROUTES = ['convert', 'jobs', 'account', 'users'];
const nav = document.getElementById('nav');
const links = [...nav.querySelectorAll('a[data-route]')];
const views = [...document.querySelectorAll('[data-view]')];
const listeners = new Map();
let admin = false;
let current = null;

/** The route the address names, or null for anything else (such as the skip link's `#main`). */
function fromHash() {
  const match = /^#\/([a-z]+)/.exec(window.location.hash);
  return match && ROUTES.includes(match[1]) ? match[1] : null;
}

/** Calls `callback` each time the view `name` is shown. */
export function onShow(name, callback) {
  listeners.set(name, callback);
}

function show(name, focus) {
  const route = name === 'users' && !admin ? 'convert' : name;
  const changed = route !== current;
  current = route;
  for (const view of views) view.hidden = view.dataset.view !== route;
  for (const link of links) {
    if (link.dataset.route === route) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (changed) window.scrollTo(0, 0);
  if (focus) {
    const heading = views.find((view) => view.dataset.view === route)?.querySelector('h2');
    heading?.focus({ preventScroll: true });
  }
  listeners.get(route)?.();
}

/** Shows `name` (and puts it in the address, so that back returns to where the user was). */
export function go(name) {
  if (fromHash() === name) show(name, false);
  else window.location.hash = `#/${name}`;
}

/** Whether the Users view exists for this user; called once `GET /users/me` says. */
export function setAdmin(isAdmin) {
  if (nav.hidden) return;
  admin = isAdmin;
  links.find((link) => link.dataset.route === 'users').hidden = !isAdmin;
  const wanted = fromHash();
  if (wanted === 'users' || current === 'users') show(wanted || 'convert', false);
}

/** Signed in: the navigation appears and the address's view with it. */
export function start() {
  nav.hidden = false;
  show(fromHash() || 'convert', false);
}

export function stop() {
  nav.hidden = true;
  admin = false;
  current = null;
  for (const view of views) view.hidden = true;
}

export function currentView() {
  return current;
}

window.addEventListener('hashchange', () => {
  const route = fromHash();
  if (route && !nav.hidden) show(route, true);
});
