/**
 * The conversion options: controls built from what each format's plugin declares (`GET
 * /formats`: bitrates, VBR, sample rates, channels, compression levels), so the page never
 * offers what the server refuses; reading them as upload query parameters, setting them from
 * parameters (a preset) or from a job's recorded `options` (a retry).
 */

/** Formats known to be lossless before a worker has published what its plugins take. */
const LOSSLESS = new Set(['wav', 'flac', 'aiff', 'alac', 'pcm']);
/** Before a worker has published its plugins: what the page offered before `GET /formats` said. */
const FALLBACK_BITRATES = [96, 128, 192, 256, 320];
const VBR_CHOICES = [[0, 'Variable, best (V0)'], [2, 'Variable, high (V2)'], [5, 'Variable, medium (V5)']];
/** The sample rates the server takes (`rate`); a plugin may take fewer. */
const SERVER_RATES = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000];
const DEFAULT_KBPS = 192;
/** Plugin names as people know the codecs. */
const CODECS = { 'mp3-lame': 'MP3', vorbis: 'Vorbis', opus: 'Opus', 'aac-fdk': 'AAC', flac: 'FLAC', wav: 'PCM' };
/** The upload query parameters that are options (the presets' allowed keys). */
export const OPTION_PARAMS = ['format', 'bitrate', 'vbr', 'level', 'start', 'end', 'rate', 'channels', 'track',
  'normalize', 'true_peak', 'title', 'artist', 'album', 'cover'];
/** The options folded under "Advanced options" (reset after each batch unless kept). */
const ADVANCED = ['start', 'end', 'rate', 'channels', 'track', 'normalize', 'true_peak', 'title', 'artist', 'album', 'cover'];

/**
 * The constant bitrates `info` (an entry of `GET /formats`) takes at `rate` (Hz, '' for the
 * source's). A format whose bitrates depend on the rate (`bitrates_by_rate`, MP3) offers at the
 * source's rate those every common source rate (44.1 and 48 kHz) carries.
 */
export function bitratesAt(info, rate) {
  const all = info && Array.isArray(info.bitrates) ? info.bitrates : FALLBACK_BITRATES;
  const byRate = info && info.bitrates_by_rate;
  if (!byRate) return all;
  if (rate) return byRate[rate] ?? all;
  const common = ['44100', '48000'].filter((hz) => Array.isArray(byRate[hz]));
  return all.filter((kbps) => common.every((hz) => byRate[hz].includes(kbps)));
}

/** Whether `info` (an entry of `GET /formats`) takes no bitrate. */
export function isLossless(info, format) {
  if (info && Array.isArray(info.bitrates)) return info.bitrates.length === 0;
  return LOSSLESS.has(format);
}

/** "OGG (Vorbis)", "FLAC — lossless", "MP3". */
export function formatLabel(info) {
  const name = info.format.toUpperCase();
  if (isLossless(info, info.format)) return `${name} — lossless`;
  const codec = CODECS[info.codec] || (info.codec ? info.codec.split('-')[0].toUpperCase() : '');
  return codec && codec !== name ? `${name} (${codec})` : name;
}

function rateLabel(hz) {
  return `${(hz / 1000).toString()} kHz`;
}

/** The loudness targets the server also takes by name. */
const NAMED_TARGETS = { streaming: -14, podcast: -16, broadcast: -23 };

/** Selects `value` in `select`, or its first choice when `value` is not one. */
function pick(select, value) {
  select.value = String(value);
  if (select.selectedIndex < 0) select.selectedIndex = 0;
}

function option(value, text) {
  const node = document.createElement('option');
  node.value = String(value);
  node.textContent = text;
  return node;
}

/** Fills `select` with `choices` ([value, text]), keeping `keep` selected if it is still one. */
function fill(select, choices, keep) {
  select.replaceChildren(...choices.map(([value, text]) => option(value, text)));
  if (choices.some(([value]) => String(value) === keep)) select.value = keep;
}

/** The `options` recorded on a job as upload parameters (strings), as a retry sends them. */
export function paramsFromJob(o = {}) {
  const params = { format: o.format };
  if (o.bitrate_kbps != null) params.bitrate = String(o.bitrate_kbps);
  if (o.vbr_quality != null) params.vbr = String(o.vbr_quality);
  if (o.level != null) params.level = String(o.level);
  if (o.start_secs != null) params.start = String(o.start_secs);
  if (o.end_secs != null) params.end = String(o.end_secs);
  if (o.sample_rate != null) params.rate = String(o.sample_rate);
  if (o.channels != null) params.channels = String(o.channels);
  if (o.track != null) params.track = String(o.track);
  if (o.normalize) {
    params.normalize = String(o.normalize.target_lufs);
    if (o.normalize.true_peak_dbtp != null && o.normalize.true_peak_dbtp !== -1) params.true_peak = String(o.normalize.true_peak_dbtp);
  }
  for (const tag of ['title', 'artist', 'album']) if (o[tag]) params[tag] = o[tag];
  if (o.cover === false) params.cover = 'none';
  return params;
}

/** Upload parameters as the `options` a job records (for a row shown before the server's). */
export function jobOptionsFromParams(params) {
  const p = Object.fromEntries(params);
  const number = (v) => (v == null ? undefined : Number(v));
  return {
    format: p.format,
    bitrate_kbps: number(p.bitrate),
    vbr_quality: number(p.vbr),
    level: number(p.level),
    sample_rate: number(p.rate),
    channels: number(p.channels),
    title: p.title,
    artist: p.artist,
    album: p.album,
    cover: p.cover !== 'none',
  };
}

/** Every format the server lists (`GET /formats`), shared by every panel. */
let formats = [];
const panels = [];

/** Loads `GET /formats` (public) and rebuilds every panel's controls from it. */
export async function loadFormats() {
  try {
    const res = await fetch('/formats', { credentials: 'omit', cache: 'no-store' });
    if (!res.ok) return;
    const list = await res.json();
    if (!Array.isArray(list) || !list.length) return;
    formats = list;
    for (const panel of panels) panel.setFormats();
  } catch { /* the defaults stay */ }
}

/** The option controls under `root` (elements with `data-option`). */
export class OptionsPanel {
  constructor(root) {
    this.root = root;
    this.controls = Object.fromEntries([...root.querySelectorAll('[data-option]')].map((c) => [c.dataset.option, c]));
    this.levelField = root.querySelector('[data-field=level]');
    this.count = root.querySelector('.advanced-count');
    this.controls.format.addEventListener('change', () => this.update());
    this.controls.normalize.addEventListener('change', () => this.update());
    this.controls.rate.addEventListener('change', () => this.update());
    root.addEventListener('input', () => this.showCount());
    root.addEventListener('change', () => this.showCount());
    panels.push(this);
    this.setFormats();
  }

  info() {
    return formats.find((f) => f.format === this.controls.format.value);
  }

  setFormats() {
    const select = this.controls.format;
    if (formats.length) {
      const previous = select.value || 'mp3';
      fill(select, formats.map((f) => [f.format, formatLabel(f)]), previous);
      if (!formats.some((f) => f.format === previous)) select.value = formats[0].format;
    }
    this.update();
  }

  /** Offers what the chosen format takes, keeping each choice it still takes. */
  update() {
    const { bitrate, level, rate, channels, normalize } = this.controls;
    const format = this.controls.format.value;
    const info = this.info();
    // Bitrate: the plugin's constant bitrates and, if it has VBR, the variable qualities; a
    // lossless format says so instead.
    const lossless = isLossless(info, format);
    // Sample rates: the plugin's (empty: any the server takes).
    const rates = info && Array.isArray(info.sample_rates) && info.sample_rates.length
      ? SERVER_RATES.filter((hz) => info.sample_rates.includes(hz)) : SERVER_RATES;
    fill(rate, [['', 'As the source'], ...rates.map((hz) => [hz, rateLabel(hz)])], rate.value);
    if (lossless) {
      fill(bitrate, [['', 'Lossless']], '');
    } else {
      const kbps = bitratesAt(info, rate.value);
      const vbr = !info || info.vbr !== false ? VBR_CHOICES : [];
      const choices = [...kbps.map((k) => [k, `${k} kbps`]), ...vbr.map(([q, text]) => [`vbr:${q}`, text])];
      const previous = bitrate.value;
      fill(bitrate, choices, previous);
      if (bitrate.value !== previous || !previous) {
        const best = kbps.includes(DEFAULT_KBPS) ? DEFAULT_KBPS : kbps.filter((k) => k <= DEFAULT_KBPS).pop() ?? kbps[0];
        if (best != null) bitrate.value = String(best);
      }
    }
    bitrate.disabled = lossless;
    // Compression levels, where the plugin has them.
    const levels = info && Array.isArray(info.levels) ? info.levels : [];
    fill(level, [['', 'Default'], ...levels.map((n) => [n, `${n}${n === levels[0] ? ' (fastest)' : n === levels[levels.length - 1] ? ' (smallest)' : ''}`])], level.value);
    this.levelField.hidden = levels.length === 0;
    level.disabled = levels.length === 0;
    const most = info && info.max_channels ? info.max_channels : 2;
    fill(channels, [['', 'As the source'], [1, 'Mono'], ...(most >= 2 ? [[2, 'Stereo']] : [])], channels.value);
    // The peak ceiling belongs to the normalization.
    this.controls.true_peak.disabled = !normalize.value;
    this.showCount();
  }

  /** The choices as upload query parameters (empty ones left out). */
  params() {
    const params = new URLSearchParams();
    for (const [name, control] of Object.entries(this.controls)) {
      if (control.disabled) continue;
      if (name === 'bitrate') {
        if (control.value.startsWith('vbr:')) params.set('vbr', control.value.slice(4));
        else if (control.value) params.set('bitrate', control.value);
      } else if (control.type === 'checkbox') {
        if (!control.checked) params.set(name, 'none');
      } else if (control.value.trim()) {
        params.set(name, control.value.trim());
      }
    }
    return params;
  }

  /** Sets the controls from upload parameters (`{format: 'flac', level: '8', …}`); the rest
   * go back to their defaults. */
  set(params) {
    const p = params || {};
    if (p.format && [...this.controls.format.options].some((o) => o.value === p.format)) this.controls.format.value = p.format;
    for (const name of ['start', 'end', 'track', 'title', 'artist', 'album']) this.controls[name].value = p[name] ?? '';
    this.controls.cover.checked = p.cover !== 'none';
    this.controls.normalize.value = '';
    if (p.normalize != null) this.choose(this.controls.normalize, p.normalize, `${NAMED_TARGETS[p.normalize] ?? p.normalize} LUFS`);
    this.update();
    if (p.vbr != null) this.controls.bitrate.value = `vbr:${p.vbr}`;
    else if (p.bitrate != null) this.controls.bitrate.value = p.bitrate;
    if (!this.controls.bitrate.value && !this.controls.bitrate.disabled) this.update();
    for (const name of ['level', 'rate', 'channels']) pick(this.controls[name], p[name] ?? '');
    this.controls.true_peak.value = '';
    if (p.true_peak != null) this.choose(this.controls.true_peak, p.true_peak, `${p.true_peak} dBTP`);
    this.showCount();
  }

  /** Selects the number `value` in `select`, adding it when it is not one of the usual choices. */
  choose(select, value, text) {
    const wanted = NAMED_TARGETS[value] ?? Number(value);
    if (!Number.isFinite(wanted)) return;
    let match = [...select.options].find((o) => o.value !== '' && Number(o.value) === wanted);
    if (!match) {
      match = option(wanted, text);
      select.append(match);
    }
    select.value = match.value;
  }

  /** The advanced options back to their defaults (format and bitrate stay). */
  resetAdvanced() {
    for (const name of ADVANCED) {
      const control = this.controls[name];
      if (control.type === 'checkbox') control.checked = true; else control.value = '';
    }
    this.controls.level.value = '';
    this.update();
  }

  /** How many advanced options differ from their defaults, shown on the fold's summary. */
  showCount() {
    if (!this.count) return;
    const set = ADVANCED.filter((name) => {
      const control = this.controls[name];
      return control.type === 'checkbox' ? !control.checked : !control.disabled && control.value.trim() !== '';
    }).length;
    this.count.textContent = set ? ` (${set} set)` : '';
  }
}

/**
 * A copy of the panel under `source` for another form (the retry dialog): every id, label and
 * reference prefixed, so the copy's labels name its own controls.
 */
export function clonePanel(source, prefix) {
  const copy = source.cloneNode(true);
  copy.removeAttribute('id');
  for (const node of copy.querySelectorAll('[data-keep]')) node.closest('.field').remove();
  for (const node of copy.querySelectorAll('[id]')) node.id = `${prefix}${node.id}`;
  for (const node of copy.querySelectorAll('label[for]')) node.htmlFor = `${prefix}${node.htmlFor}`;
  for (const node of copy.querySelectorAll('[data-testid]')) node.dataset.testid = `${prefix}${node.dataset.testid}`;
  return copy;
}
