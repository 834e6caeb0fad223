// deepdiva web page: upload or record a sound, watch the queue, listen to and inspect results.
// Contract: daemon/web.py (API described in the web API notes). Plain ES2020, no build step.
// Safety: server strings (file names, errors, parameter names) only ever go through
// textContent / setAttribute, never innerHTML.
'use strict';

// ---------------------------------------------------------------- helpers

const $ = (id) => document.getElementById(id);

/** createElement with attributes ("text", "class", "on<event>", anything else via setAttribute). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.filter((c) => c != null)); // strings become text nodes
  return node;
}

/** fetch + JSON; a non-2xx answer throws an Error carrying the server's {error} text. */
async function api(url, options = {}) {
  let res;
  try {
    res = await fetch(url, { credentials: 'same-origin', ...options });
  } catch (err) {
    throw new Error(`The daemon does not answer (${err.message}).`);
  }
  let body = null;
  try { body = await res.json(); } catch { /* empty or not JSON */ }
  if (!res.ok) {
    if (body && typeof body.error === 'string' && body.error) throw new Error(body.error);
    if (res.status === 413) throw new Error(`The file is too large (the daemon takes up to ${app.daemon?.max_upload_mb ?? '?'} MB).`);
    throw new Error(`${res.status} ${res.statusText || 'error'}`);
  }
  return body;
}

const ORIGINS = { web: 'web', drop: 'drop folder', osc: 'OSC', recording: 'recording' };
const originLabel = (origin) => ORIGINS[origin] || origin || '?';

function fmtClock(unix) {
  if (unix == null) return '';
  const d = new Date(unix * 1000);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

function fmtDistance(d) {
  if (d == null || !Number.isFinite(d)) return 'not scored';
  return Math.abs(d) < 10 ? d.toFixed(3) : d.toFixed(1);
}

const fmtCents = (cents) => {
  const c = Math.round(cents);
  return `${c < 0 ? '-' : '+'}${Math.abs(c)} cents`;
};

/** "A4 +12 cents, 445.7 Hz" or "unpitched". */
function fmtPitch(pitch, fallbackNote) {
  if (pitch && pitch.pitched && pitch.note) {
    let text = pitch.note;
    if (pitch.cents != null) text += ` ${fmtCents(pitch.cents)}`;
    if (pitch.hz != null) text += `, ${pitch.hz.toFixed(1)} Hz`;
    return text;
  }
  if (pitch) return 'unpitched';
  return fallbackNote || 'unpitched';
}

const resultUrl = (id, tail = '') => `/api/results/${encodeURIComponent(id)}${tail}`;
const narrow = () => window.matchMedia('(max-width: 800px)').matches;

// ---------------------------------------------------------------- page state

const app = {
  daemon: null,            // /api/state .daemon
  jobs: new Map(),         // id -> {job: JobSummary, at: performance.now() of the last event}
  mine: new Set(),         // ids uploaded from this page
  handled: new Set(),      // ids of mine whose finish was already announced
  stateRequest: 0,         // counter: only the newest /api/state answer is applied
  shownId: null,           // result on display
  result: null,            // its /api/results answer
  rank: 1,                 // candidate on display
  hearing: 'A',            // A = target, B = match
  uploads: 0,              // uploads in flight
};
const HISTORY_LIMIT = 100;
const FINAL = new Set(['done', 'failed']);

// ---------------------------------------------------------------- message area

/** Show the outcome of the last action. kind: info | ok | busy | error. */
function say(text, kind = 'info') {
  const box = $('message');
  box.textContent = text;
  box.className = `message ${kind}`;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

function clearMessage() {
  say('');
}

// ---------------------------------------------------------------- live: state and events

function applyDaemon(daemon) {
  const first = !app.daemon;
  app.daemon = daemon;
  $('daemon-info').textContent = `${daemon.model} · ${daemon.synth} · presets in ${daemon.preset_folder}`;
  setLimits($('refine'), 0, daemon.max_refine_seconds, first ? daemon.refine_seconds : null);
  setLimits($('candidates'), 1, daemon.max_candidates, first ? daemon.candidates : null);
  setLimits($('record-seconds'), 0.5, daemon.max_record_seconds, first ? daemon.record_seconds : null);
  updatePushButton();
}

function setLimits(input, min, max, value) {
  input.min = String(min);
  if (max != null) input.max = String(max);
  if (value != null && input.value === '') input.value = String(value);
}

async function loadState() {
  const request = ++app.stateRequest;
  const sentAt = performance.now();
  let data;
  try {
    data = await api('/api/state');
  } catch (err) {
    say(err.message, 'error');
    return;
  }
  if (request !== app.stateRequest) return;
  applyDaemon(data.daemon);
  const fresh = new Map();
  for (const job of [...(data.jobs || []), ...(data.history || [])]) fresh.set(job.id, { job, at: sentAt });
  // An event that arrived while the request was under way is newer than the snapshot.
  for (const [id, entry] of app.jobs) if (entry.at > sentAt) fresh.set(id, entry);
  app.jobs = fresh;
  for (const { job } of fresh.values()) announceIfMine(job);
  renderLists();
}

function applyEvent(job) {
  if (!job || typeof job.id !== 'string') return;
  app.jobs.set(job.id, { job, at: performance.now() });
  announceIfMine(job);
  renderLists();
}

function connectEvents() {
  const source = new EventSource('/api/events');
  source.addEventListener('job', (event) => {
    try { applyEvent(JSON.parse(event.data)); } catch { /* malformed message: ignore */ }
  });
  source.onopen = () => { setLive(true); loadState(); }; // (re)connected: catch up on what was missed
  source.onerror = () => {
    setLive(false);
    if (source.readyState === EventSource.CLOSED) { // the browser gave up: try again ourselves
      source.close();
      setTimeout(connectEvents, 5000);
    }
  };
}

function setLive(live) {
  const badge = $('live');
  badge.textContent = live ? 'live' : 'reconnecting…';
  badge.classList.toggle('on', live);
}

/** A job uploaded from this page finished: open its result, or say why it failed. */
function announceIfMine(job) {
  if (!app.mine.has(job.id) || app.handled.has(job.id) || !FINAL.has(job.state)) return;
  app.handled.add(job.id);
  const name = job.source || job.name;
  if (job.state === 'done') {
    say(`Matched “${name}”.`, 'ok');
    openResult(job.id, { scroll: true });
  } else {
    say(`“${name}” failed: ${job.error || 'unknown error'}`, 'error');
  }
}

// ---------------------------------------------------------------- live: queue and history lists

function renderLists() {
  const all = [...app.jobs.values()].map((e) => e.job);
  const queue = all.filter((j) => !FINAL.has(j.state)).sort((a, b) => a.created - b.created);
  const history = all.filter((j) => FINAL.has(j.state))
    .sort((a, b) => (b.finished ?? b.created) - (a.finished ?? a.created))
    .slice(0, HISTORY_LIMIT);
  const kept = new Set(history.map((j) => j.id));
  for (const job of all) if (FINAL.has(job.state) && !kept.has(job.id)) app.jobs.delete(job.id); // bounded
  const focusedId = document.activeElement?.closest?.('.list [data-id]')?.dataset.id;

  $('jobs').replaceChildren(...queue.map((job, i) => jobRow(job, i + 1)));
  $('history').replaceChildren(...history.map(historyRow));
  $('jobs-empty').hidden = queue.length > 0;
  $('history-empty').hidden = history.length > 0;

  if (focusedId) document.querySelector(`.list [data-id="${CSS.escape(focusedId)}"]`)?.focus();
}

function jobRow(job, position) {
  const label = job.state === 'matching' ? 'matching…' : `queued #${position}`;
  return el('li', { 'data-testid': 'job', 'data-id': job.id, 'data-state': job.state, class: 'row' },
    el('span', { class: 'row-title', text: job.source || job.name, title: job.name }),
    el('span', { class: 'row-meta' },
      el('span', { class: `badge ${job.state}`, text: label }),
      ` ${originLabel(job.origin)} · ${fmtClock(job.created)}`));
}

function historyRow(job) {
  const selected = job.id === app.shownId;
  const details = job.state === 'done'
    ? ` ${job.note || 'unpitched'} · distance ${fmtDistance(job.distance)}`
    : '';
  const row = el('li', {
    'data-testid': 'history-item', 'data-id': job.id, 'data-state': job.state,
    class: `row clickable${selected ? ' selected' : ''}`, tabindex: 0, role: 'button',
    'aria-current': selected ? 'true' : null,
    onclick: () => openResult(job.id, { scroll: true }),
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openResult(job.id, { scroll: true }); } },
  },
  el('span', { class: 'row-title', text: job.source || job.name, title: job.name }),
  el('span', { class: 'row-meta' },
    el('span', { class: `badge ${job.state}`, text: job.state }),
    `${details} · ${originLabel(job.origin)} · ${fmtClock(job.finished ?? job.created)}`));
  if (job.state === 'failed') row.append(el('span', { class: 'row-error', text: job.error || 'failed' }));
  return row;
}

function markSelected() {
  for (const row of $('history').children) {
    const on = row.dataset.id === app.shownId;
    row.classList.toggle('selected', on);
    if (on) row.setAttribute('aria-current', 'true'); else row.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------- in: upload

function readNumber(input, fallback) {
  const value = input.value.trim();
  return value === '' ? fallback : value;
}

async function uploadFile(file, name = file.name || 'upload') {
  const params = new URLSearchParams({
    name,
    refine: readNumber($('refine'), app.daemon?.refine_seconds ?? ''),
    candidates: readNumber($('candidates'), app.daemon?.candidates ?? ''),
  });
  setUploading(+1);
  say(`Uploading “${name}”…`, 'busy');
  try {
    const answer = await api(`/api/upload?${params}`, { method: 'POST', body: file });
    app.mine.add(answer.id);
    const where = answer.position > 0 ? ` (position ${answer.position})` : '';
    say(`“${name}” is queued${where}.`, 'info');
    const known = app.jobs.get(answer.id); // its events may have arrived before this answer
    if (known) announceIfMine(known.job);
  } catch (err) {
    say(`Upload of “${name}” failed: ${err.message}`, 'error');
  } finally {
    setUploading(-1);
  }
}

async function uploadFiles(files) {
  for (const file of files) await uploadFile(file); // one after another keeps messages readable
}

function setUploading(delta) {
  app.uploads += delta;
  const zone = $('drop-zone');
  zone.classList.toggle('busy', app.uploads > 0);
  zone.setAttribute('aria-busy', String(app.uploads > 0));
}

function setupDropZone() {
  const zone = $('drop-zone');
  const input = $('file-input');
  zone.addEventListener('click', () => input.click());
  zone.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); }
  });
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = ''; // choosing the same file again still fires change
    uploadFiles(files);
  });
  // The whole window takes drops (a near miss should not navigate away); the zone lights up.
  let depth = 0;
  window.addEventListener('dragenter', (e) => { if (hasFiles(e)) { depth++; zone.classList.add('over'); } });
  window.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; zone.classList.remove('over'); } });
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove('over');
    uploadFiles([...e.dataTransfer.files]);
  });
}

const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');

// ---------------------------------------------------------------- in: recording

// Collects mono Float32 blocks; loaded from a Blob URL so no second script file is needed.
const COLLECTOR = `registerProcessor('collect', class extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input && input.length) this.port.postMessage(input[0].slice(0));
    return true;
  }
});`;

const recording = { active: null }; // {stop()} while recording

function setupRecorder() {
  const button = $('record');
  const ok = window.isSecureContext !== false && navigator.mediaDevices?.getUserMedia
    && (window.AudioContext || window.webkitAudioContext);
  if (!ok) {
    const why = 'Your browser allows recording only on a secure page: HTTPS (leave web.tls = auto or on), or localhost on the daemon’s machine.';
    button.disabled = true;
    button.title = why;
    $('record-note').textContent = `${why} Use the file picker above instead; on a phone it can record too.`;
    $('record-note').hidden = false;
    return;
  }
  button.addEventListener('click', () => {
    if (recording.active) recording.active.stop();
    else record().catch((err) => { finishRecordingUi(); say(`Recording failed: ${err.message}`, 'error'); });
  });
}

/** A node that hands every block of mono samples to onBlock: AudioWorklet, else ScriptProcessor. */
async function makeCollector(ctx, onBlock) {
  if (ctx.audioWorklet && window.AudioWorkletNode) {
    const url = URL.createObjectURL(new Blob([COLLECTOR], { type: 'application/javascript' }));
    try {
      await ctx.audioWorklet.addModule(url);
      const node = new AudioWorkletNode(ctx, 'collect', { channelCount: 1, channelCountMode: 'explicit' });
      node.port.onmessage = (e) => onBlock(e.data);
      return node;
    } catch { /* e.g. a content policy refusing blob: scripts: fall back */ } finally {
      URL.revokeObjectURL(url);
    }
  }
  const node = ctx.createScriptProcessor(4096, 1, 1);
  node.channelCountMode = 'explicit';
  node.onaudioprocess = (e) => onBlock(new Float32Array(e.inputBuffer.getChannelData(0)));
  return node;
}

async function record() {
  const seconds = Math.min(
    Math.max(parseFloat($('record-seconds').value) || app.daemon?.record_seconds || 4, 0.5),
    app.daemon?.max_record_seconds || 60);
  const Context = window.AudioContext || window.webkitAudioContext;
  const ctx = new Context(); // created inside the click so it may start
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (err) {
    ctx.close();
    throw new Error(err.name === 'NotAllowedError' ? 'the microphone permission was refused'
      : err.name === 'NotFoundError' ? 'no microphone found' : err.message);
  }
  const blocks = [];
  let collector;
  let input;
  try {
    await ctx.resume();
    collector = await makeCollector(ctx, (block) => blocks.push(block));
    const silent = ctx.createGain(); // processors only run when connected to the output
    silent.gain.value = 0;
    input = ctx.createMediaStreamSource(stream);
    input.connect(collector);
    collector.connect(silent);
    silent.connect(ctx.destination);
  } catch (err) {
    stream.getTracks().forEach((t) => t.stop());
    ctx.close();
    throw err;
  }

  const started = ctx.currentTime;
  const total = Math.round(seconds * ctx.sampleRate);
  const stop = () => {
    clearInterval(timer);
    recording.active = null;
    input.disconnect();
    collector.disconnect();
    stream.getTracks().forEach((t) => t.stop());
    const rate = ctx.sampleRate;
    ctx.close();
    finishRecordingUi();
    uploadRecording(blocks, total, rate);
  };
  const timer = setInterval(() => {
    const left = seconds - (ctx.currentTime - started);
    if (left <= -0.1) stop(); else showCountdown(Math.max(0, left)); // the grace lets the last blocks arrive
  }, 100);
  recording.active = { stop };
  startRecordingUi();
  showCountdown(seconds);
}

function uploadRecording(blocks, total, rate) {
  const samples = joinBlocks(blocks, total);
  if (samples.length < rate * 0.1) {
    say('Nothing was recorded (no sound came from the microphone).', 'error');
    return;
  }
  const name = `recording ${localStamp()}.wav`;
  uploadFile(new File([encodeWav(samples, rate)], name, { type: 'audio/wav' }), name);
}

function joinBlocks(blocks, limit) {
  const length = Math.min(limit, blocks.reduce((n, b) => n + b.length, 0));
  const out = new Float32Array(length);
  let at = 0;
  for (const block of blocks) {
    if (at >= length) break;
    const part = block.subarray(0, length - at);
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** 16-bit PCM mono WAV. */
function encodeWav(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, s) => { for (let i = 0; i < s.length; i++) view.setUint8(at + i, s.charCodeAt(i)); };
  text(0, 'RIFF');
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true);       // fmt chunk size
  view.setUint16(20, 1, true);        // PCM
  view.setUint16(22, 1, true);        // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true); // bytes per second
  view.setUint16(32, 2, true);        // bytes per frame
  view.setUint16(34, 16, true);       // bits per sample
  text(36, 'data');
  view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([view.buffer], { type: 'audio/wav' });
}

/** "2024-05-01 14-03-22" (no colons: the name becomes a file name). */
function localStamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
}

function startRecordingUi() {
  $('record').classList.add('recording');
  $('record-seconds').disabled = true;
}

function showCountdown(left) {
  $('record').textContent = `■ Stop (${left.toFixed(1)} s)`;
  say(`Recording… ${Math.ceil(left)} s left`, 'busy');
}

function finishRecordingUi() {
  const button = $('record');
  button.classList.remove('recording');
  button.textContent = '● Record';
  $('record-seconds').disabled = false;
}

// ---------------------------------------------------------------- out: result view

async function openResult(id, { scroll = false } = {}) {
  app.shownId = id;
  markSelected();
  if (location.hash !== `#${encodeURIComponent(id)}`) history.replaceState(null, '', `#${encodeURIComponent(id)}`);
  let data;
  try {
    data = await api(resultUrl(id));
  } catch (err) {
    if (app.shownId === id) say(`Cannot open the result: ${err.message}`, 'error');
    return;
  }
  if (app.shownId !== id) return; // another one was chosen meanwhile
  app.result = data;
  showResult(data);
  if (scroll && narrow()) $('result').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function showResult(data) {
  pauseAll();
  const view = $('result');
  view.dataset.id = data.id;
  view.hidden = false;
  $('result-placeholder').hidden = true;
  $('result-title').textContent = data.source || data.name;
  $('result-title').title = data.name || '';
  $('note').textContent = data.chord ? `the chord ${data.chord.join(' ')}` : fmtPitch(data.pitch, data.note);
  $('distance').textContent = fmtDistance(data.distance);
  $('match-time').textContent = data.seconds != null ? `${data.seconds.toFixed(1)} s` : '—';
  $('match-time').title = data.finished ? `finished ${fmtClock(data.finished)}` : '';
  $('result-origin').textContent = `${originLabel(data.origin)} · ${fmtClock(data.created)}`;
  const at = data.played_at;
  $('played-at-row').hidden = !at;
  if (at) {
    const keys = (at.keys || []).length > 1 ? at.keys.join(' ') : at.note;  // a chord: every key of it
    $('played-at').textContent = Math.round(at.cents || 0) ? `${keys} ${fmtCents(at.cents)}` : keys;
  }
  const take = takeNotes(data.take);
  $('take-row').hidden = !take;
  $('take').textContent = take;

  const failed = data.state === 'failed' || !(data.candidates || []).length;
  $('result-error').hidden = !failed;
  $('result-error').textContent = failed ? (data.error || 'This job has no result.') : '';
  $('result-body').hidden = failed;
  if (failed) return;

  const match = $('audio-match');
  match.removeAttribute('src');
  match.load(); // a new result starts at zero, not at the last one's position
  $('audio-target').src = resultUrl(data.id, '/audio/target.wav');
  renderCandidates(data);
  setHearing('A');
  selectRank(data.candidates[0].rank);
}

// What was done to a take before matching (a quiet one raised, clipped samples restored) and the
// hiss it was heard through; empty when it went in as recorded.
function takeNotes(take) {
  if (!take) return '';
  const notes = [];
  if (take.raised_db > 0) notes.push(`raised ${take.raised_db.toFixed(1)} dB (a quiet take)`);
  if (take.restored_samples > 0) notes.push(`${take.restored_samples} clipped samples restored`);
  if (take.noise_floor_dbfs != null) notes.push(`hiss at ${Math.round(take.noise_floor_dbfs)} dBFS`);
  return notes.join('; ');
}

function candidateOf(rank) {
  return app.result?.candidates.find((c) => c.rank === rank);
}

function sectionsOf(rank) {
  const data = app.result;
  if (rank === 1) return data.sections || [];
  return (data.sections_by_rank || {})[String(rank)] || [];
}

/** Switch match player, spectrogram, parameters, download, push and path to one candidate. */
function selectRank(rank) {
  const data = app.result;
  const cand = candidateOf(rank);
  if (!cand) return;
  app.rank = rank;
  for (const row of $('candidates-list').children) {
    const on = Number(row.dataset.rank) === rank;
    row.classList.toggle('selected', on);
    if (on) row.setAttribute('aria-current', 'true'); else row.removeAttribute('aria-current');
  }
  const what = rank === 1 ? 'match' : `candidate ${rank}`;
  $('match-tag').textContent = `B · ${what}`;
  $('convergence').textContent = cand.convergence != null
    ? `${cand.convergence.toFixed(2)}${rank === 1 ? '' : ` (${what})`}` : '—';
  setMatchSource(cand.audio ? resultUrl(data.id, `/audio/${rank}.wav`) : null);

  const img = $('spectrogram');
  img.hidden = false;
  img.src = resultUrl(data.id, `/spectrogram/${rank}.png`);
  img.alt = `Spectrograms: target, ${what}, difference`;
  $('spectrogram-caption').textContent = `target | ${what} | difference (click to enlarge)`;

  $('params-title').textContent = rank === 1 ? 'Parameters' : `Parameters of candidate ${rank}`;
  renderParams(sectionsOf(rank));

  const download = $('download');
  download.href = resultUrl(data.id, `/preset/${rank}`);
  download.textContent = `Download ${cand.file}`;
  $('preset-path').textContent = cand.path || (rank === 1 ? data.preset : '') || '';
}

/** Point the match player at another render, keeping position and play state. */
function setMatchSource(url) {
  const player = $('audio-match');
  if (!url) {
    player.pause();
    player.removeAttribute('src');
    player.load();
    return;
  }
  if (player.src.endsWith(url)) return;
  const playing = !player.paused;
  const time = player.currentTime;
  player.src = url;
  if (playing || time > 0) seekThenPlay(player, time, playing);
}

// ---------------------------------------------------------------- out: players and A/B

const mainPlayers = () => [$('audio-target'), $('audio-match')];

function pauseAll(except) {
  for (const player of $('result').querySelectorAll('audio')) if (player !== except) player.pause();
}

/** Seek (once the length is known) and optionally play. */
function seekThenPlay(player, time, play = true) {
  const go = () => {
    const end = Number.isFinite(player.duration) ? Math.max(0, player.duration - 0.01) : time;
    try { player.currentTime = Math.min(time, end); } catch { /* not seekable yet */ }
    if (play) player.play().catch((err) => say(`Cannot play: ${err.message}`, 'error'));
  };
  if (player.readyState >= 1) go(); else player.addEventListener('loadedmetadata', go, { once: true });
}

function setHearing(which) {
  app.hearing = which;
  const button = $('ab');
  button.textContent = which === 'A' ? 'hearing A: target' : 'hearing B: match';
  button.classList.toggle('b', which === 'B');
  const [target, match] = mainPlayers();
  target.parentElement.classList.toggle('audible', which === 'A');
  match.parentElement.classList.toggle('audible', which === 'B');
}

function abSwitch() {
  const [target, match] = mainPlayers();
  const [from, to] = app.hearing === 'A' ? [target, match] : [match, target];
  if (!to.getAttribute('src')) {
    say('This candidate has no audio to compare.', 'error');
    return;
  }
  const time = from.currentTime;
  from.pause();
  setHearing(app.hearing === 'A' ? 'B' : 'A');
  seekThenPlay(to, time);
}

function setupPlayers() {
  $('ab').addEventListener('click', abSwitch);
  // One sound at a time; starting A or B by its own controls also moves the A/B switch.
  document.addEventListener('play', (e) => {
    if (!(e.target instanceof HTMLMediaElement)) return;
    pauseAll(e.target);
    if (e.target.id === 'audio-target') setHearing('A');
    if (e.target.id === 'audio-match') setHearing('B');
  }, true);
  // The picture is wide; on a phone it is small: a tap opens it full size.
  $('spectrogram').addEventListener('click', (e) => {
    if (e.target.src) window.open(e.target.src, '_blank', 'noopener');
  });
  $('spectrogram').addEventListener('error', (e) => {
    if (e.target.getAttribute('src')) {
      e.target.hidden = true;
      $('spectrogram-caption').textContent = 'No spectrogram for this candidate.';
    }
  });
}

// ---------------------------------------------------------------- out: candidates

function renderCandidates(data) {
  $('candidates-list').replaceChildren(...data.candidates.map((c) => candidateRow(data.id, c)));
}

function candidateRow(id, cand) {
  const audio = el('audio', {
    'data-testid': 'audio-candidate', 'data-rank': cand.rank, preload: 'none',
    src: cand.audio ? resultUrl(id, `/audio/${cand.rank}.wav`) : null,
  });
  const play = el('button', {
    type: 'button', 'data-testid': 'play-candidate', class: 'play small',
    text: '▶', 'aria-label': `play candidate ${cand.rank}`,
    disabled: !cand.audio, title: cand.audio ? null : 'no audio for this candidate',
  });
  play.addEventListener('click', (e) => {
    e.stopPropagation();
    pauseAll();
    selectRank(cand.rank);
    if (audio.paused) { audio.currentTime = 0; audio.play().catch((err) => say(`Cannot play: ${err.message}`, 'error')); } else audio.pause();
  });
  audio.addEventListener('play', () => { play.textContent = '■'; });
  for (const ev of ['pause', 'ended']) audio.addEventListener(ev, () => { play.textContent = '▶'; });

  const select = () => selectRank(cand.rank);
  return el('li', {
    'data-testid': 'candidate', 'data-rank': cand.rank, class: 'row clickable candidate',
    tabindex: 0, onclick: select,
    onkeydown: (e) => { if (e.key === 'Enter') select(); },
  },
  play,
  el('span', { class: 'rank', text: cand.rank === 1 ? '1 · match' : String(cand.rank) }),
  el('span', { class: 'dist', text: fmtDistance(cand.distance) }),
  el('span', { class: 'file', text: cand.file, title: cand.path }),
  audio);
}

// ---------------------------------------------------------------- out: parameter table

const collapsedSections = new Set(); // remembered across candidates and results

function renderParams(sections) {
  const nodes = sections.map((section) => {
    const table = el('table', {},
      el('tbody', {}, ...section.rows.map(paramRow)));
    const details = el('details', { open: !collapsedSections.has(section.section), 'data-section': section.section },
      el('summary', {}, section.section, el('span', { class: 'count', text: ` ${section.rows.length}` })),
      table);
    details.addEventListener('toggle', () => {
      if ($('params-filter').value.trim()) return; // opened by a search, not by the user
      if (details.open) collapsedSections.delete(section.section); else collapsedSections.add(section.section);
      updateToggleLabel();
    });
    return details;
  });
  $('params').replaceChildren(...nodes);
  if (!sections.length) $('params').append(el('p', { class: 'empty', text: 'No parameters for this candidate.' }));
  applyParamFilter();
  updateToggleLabel();
}

function paramRow(row) {
  const n = Number(row.normalised);
  const fill = el('span', { class: 'fill' });
  if (Number.isFinite(n)) fill.style.width = `${Math.round(Math.max(0, Math.min(1, n)) * 100)}%`;
  return el('tr', {},
    el('th', { scope: 'row', text: row.name, title: row.location }),
    el('td', { class: 'value', text: row.value }),
    el('td', { class: 'norm' },
      el('span', { class: 'bar', title: Number.isFinite(n) ? n.toFixed(3) : '' }, fill)));
}

function applyParamFilter() {
  const query = $('params-filter').value.trim().toLowerCase();
  for (const details of $('params').querySelectorAll('details')) {
    let shown = 0;
    for (const tr of details.querySelectorAll('tr')) {
      const hit = !query || tr.textContent.toLowerCase().includes(query)
        || details.dataset.section.toLowerCase().includes(query);
      tr.hidden = !hit;
      shown += hit ? 1 : 0;
    }
    details.hidden = shown === 0;
    details.open = query ? true : !collapsedSections.has(details.dataset.section);
  }
}

function toggleAllSections() {
  const all = [...$('params').querySelectorAll('details')];
  const collapse = all.some((d) => d.open);
  for (const details of all) {
    if (collapse) collapsedSections.add(details.dataset.section); else collapsedSections.delete(details.dataset.section);
  }
  applyParamFilter();
  updateToggleLabel();
}

function updateToggleLabel() {
  const anyOpen = [...$('params').querySelectorAll('details')].some((d) => d.open);
  $('params-toggle').textContent = anyOpen ? 'Collapse all' : 'Expand all';
}

// ---------------------------------------------------------------- out: preset actions

function updatePushButton() {
  const button = $('push');
  const off = app.daemon && !app.daemon.midi;
  const why = off ? (app.daemon.midi_problem || 'MIDI output is off in the daemon settings.') : '';
  button.disabled = Boolean(off);
  button.title = why;
  $('push-note').textContent = why;
}

async function pushPreset() {
  const id = app.shownId;
  const rank = app.rank;
  const button = $('push');
  button.disabled = true;
  say('Sending to the synth…', 'busy');
  try {
    const answer = await api(resultUrl(id, `/push/${rank}`), { method: 'POST' });
    say(`Sent ${answer.sent} MIDI CC messages (${rank === 1 ? 'match' : `candidate ${rank}`}).`, 'ok');
  } catch (err) {
    say(`Push failed: ${err.message}`, 'error');
  } finally {
    updatePushButton();
  }
}

async function copyPath() {
  const node = $('preset-path');
  const text = node.textContent;
  if (!text) return;
  try {
    await navigator.clipboard.writeText(text); // missing on plain http: falls to the catch
    say('Preset path copied.', 'ok');
  } catch {
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    let copied = false;
    try { copied = document.execCommand('copy'); } catch { /* unsupported */ }
    say(copied ? 'Preset path copied.' : 'Path selected: press Ctrl+C (⌘C) to copy it.', copied ? 'ok' : 'info');
  }
}

// ---------------------------------------------------------------- start

function start() {
  setupDropZone();
  setupRecorder();
  setupPlayers();
  $('message').addEventListener('click', clearMessage);
  $('message').title = 'click to dismiss';
  $('push').addEventListener('click', pushPreset);
  $('copy-path').addEventListener('click', copyPath);
  $('params-filter').addEventListener('input', applyParamFilter);
  $('params-toggle').addEventListener('click', toggleAllSections);
  connectEvents();
  loadState();
  let wanted = '';
  try { wanted = decodeURIComponent(location.hash.slice(1)); } catch { /* malformed link */ }
  if (wanted) openResult(wanted);
}

start();
