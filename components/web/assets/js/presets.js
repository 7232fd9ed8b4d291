/**
 * Saved presets: the current format and options stored under a name on the user's account
 * (`/users/me/presets`, so they follow the user across browsers), picked to fill the options,
 * and deleted.
 */

import { api, describe, errorBody, jsonRequest, session } from './api.js';
import { confirmAction, say } from './ui.js';

const box = document.getElementById('presets');
const select = document.getElementById('preset');
const remove = document.getElementById('preset-delete');
const form = document.getElementById('preset-form');
const nameInput = document.getElementById('preset-name');
let presets = [];
let panel = null;

function show() {
  const chosen = select.value;
  select.replaceChildren(select.options[0], ...presets.map((preset) => {
    const node = document.createElement('option');
    node.value = preset.name;
    node.textContent = preset.name;
    return node;
  }));
  select.value = presets.some((p) => p.name === chosen) ? chosen : '';
  box.hidden = presets.length === 0;
  remove.disabled = !select.value;
}

export async function loadPresets() {
  try {
    const res = await api('/users/me/presets');
    if (res.status === 401) { session.onExpired(); return; }
    if (!res.ok) return;
    const list = await res.json();
    presets = Array.isArray(list) ? list : [];
    show();
  } catch { /* no presets offered until the next load */ }
}

/** Back to "None" (after a batch, unless the options are kept). */
export function clearPreset() {
  select.value = '';
  remove.disabled = true;
}

export function forget() {
  presets = [];
  show();
}

/** Wires the presets to the options `optionsPanel` shows. */
export function initPresets(optionsPanel) {
  panel = optionsPanel;
  select.addEventListener('change', () => {
    remove.disabled = !select.value;
    const preset = presets.find((p) => p.name === select.value);
    if (!preset) return;
    panel.set(preset.params);
    say(`Preset ${preset.name} chosen.`, 'info');
  });

  remove.addEventListener('click', async () => {
    const name = select.value;
    if (!name) return;
    const confirmed = await confirmAction({
      title: `Delete the preset ${name}?`,
      text: 'The options it holds are forgotten; conversions made with it are not affected.',
    });
    if (!confirmed) return;
    const res = await api(`/users/me/presets/${encodeURIComponent(name)}`, { method: 'DELETE' });
    if (res.status === 401) { session.onExpired(); return; }
    if (res.status !== 204 && res.status !== 404) {
      say(`The preset was not deleted. ${describe(res.status, await errorBody(res))}`, 'error');
      return;
    }
    presets = presets.filter((p) => p.name !== name);
    show();
    say(`Preset ${name} deleted.`, 'ok');
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!name) return;
    const params = Object.fromEntries(panel.params());
    let res;
    try {
      res = await jsonRequest('PUT', `/users/me/presets/${encodeURIComponent(name)}`, { params });
    } catch {
      say(`The preset was not saved. ${describe(0)}`, 'error');
      return;
    }
    if (res.status === 401) { session.onExpired(); return; }
    if (!res.ok) {
      say(`The preset was not saved. ${describe(res.status, await errorBody(res))}`, 'error');
      return;
    }
    const saved = await res.json();
    presets = [...presets.filter((p) => p.name !== saved.name), saved].sort((a, b) => a.name.localeCompare(b.name));
    show();
    select.value = saved.name;
    remove.disabled = false;
    nameInput.value = '';
    say(`Saved the preset ${saved.name}.`, 'ok');
  });
}
