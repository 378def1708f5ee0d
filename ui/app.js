// framecast viewer: the original video through /video (HTTP ranges), detections drawn on a
// canvas in step with the frame shown. The frame shown comes from requestVideoFrameCallback's
// mediaTime looked up in the file's frame-time map (/frames), never from time × fps.
'use strict';

const API = '/api/v1';
const $ = (id) => document.getElementById(id);
const video = $('video');
const canvas = $('overlay');
const ctx = canvas.getContext('2d');

const state = {
  token: '',
  file: null,        // the file's record
  times: [],         // frame n's presentation time, seconds, in the original file
  offset: 0,         // times[0] minus the browser's mediaTime of frame 0 (calibrated)
  frame: -1,         // the frame on screen
  windows: new Map(), // detections by window start frame
  traces: [],
  tracesNext: null,
  filesNext: null,
  highlight: null,   // trace id drawn thick
  stopAt: null,      // frame at which a trace's span ends
  inFrame: null,
  outFrame: null,
  burned: false,
  cues: [],          // storyboard cues
};
const WINDOW = 500;  // detections per request: frames

function status(text) { $('status').textContent = text; }

// ---- API ----

async function api(path) {
  const response = await fetch(API + path, { headers: { Authorization: 'Bearer ' + state.token } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function mediaUrl(path, params = {}) {
  const query = new URLSearchParams({ ...params, access_token: state.token });
  return `${API}/file/${state.file.uuid}${path}?${query}`;
}

// ---- token and files ----

function useToken(token) {
  state.token = token.trim();
  sessionStorage.setItem('framecast-token', state.token);
  $('token').value = '';
  loadFiles(null).catch((e) => status(e.message));
}

async function loadFiles(after) {
  const page = await api('/files?limit=100' + (after ? '&after=' + after : ''));
  const list = $('files');
  if (!after) list.textContent = '';
  for (const f of page.files) {
    const item = document.createElement('li');
    item.dataset.uuid = f.uuid;
    item.textContent = f.name || f.uuid;
    const info = document.createElement('small');
    info.textContent = `${f.width}x${f.height} · ${f.frames} frames · ${f.fps.toFixed(3)} fps · ${f.detections} detections`;
    item.append(info);
    item.addEventListener('click', () => openFile(f.uuid).catch((e) => status(e.message)));
    list.append(item);
  }
  state.filesNext = page.next_after;
  $('more-files').hidden = !page.next_after;
  status(page.files.length || after ? '' : 'no files for this token');
}

async function openFile(uuid) {
  for (const li of $('files').children) li.classList.toggle('selected', li.dataset.uuid === uuid);
  state.file = await api('/file/' + uuid);
  state.times = [];
  for (let start = 0; start < state.file.frames; start += 10000) {
    const page = await api(`/file/${uuid}/frames?start_frame=${start}`);
    for (const f of page.frames) state.times[f.frame] = f.time;
  }
  state.windows.clear();
  state.traces = [];
  state.highlight = null;
  state.stopAt = null;
  state.frame = -1;
  state.offset = 0;
  state.calibrated = false;
  $('traces').textContent = '';
  await loadTraces(null);
  $('title').textContent = state.file.name || uuid;
  $('frames').textContent = state.file.frames;
  $('player').hidden = false;
  setSource();
  loadStoryboard();
  updateClip();
}

async function loadTraces(after) {
  const page = await api(`/file/${state.file.uuid}/traces?limit=100` + (after !== null ? '&after=' + after : ''));
  for (const t of page.traces) {
    state.traces.push(t);
    const item = document.createElement('li');
    item.dataset.trace = t.trace_id;
    item.textContent = `#${t.trace_id}${t.identity ? ' ' + t.identity : ''}`;
    const info = document.createElement('small');
    info.textContent = `frames ${t.first_frame}-${t.last_frame} · ${t.detections} detections`;
    item.append(info);
    item.addEventListener('click', () => playTrace(t));
    $('traces').append(item);
  }
  state.tracesNext = page.next_after;
  $('more-traces').hidden = page.next_after === null;
}

// ---- the video and the frame on screen ----

function setSource() {
  const time = video.currentTime || 0;
  state.calibrated = state.burned; // the server-drawn stream starts at 0 by construction
  video.src = state.burned
    ? mediaUrl('/video/bbox', { format: 'mp4', audio: 'off' })
    : mediaUrl('/video');
  canvas.hidden = state.burned;
  video.currentTime = time;
  watchFrames();
}

// The browser's mediaTime of frame n.
function frameTime(n) {
  const base = state.burned ? state.times[0] : state.offset;
  return state.times[n] - base;
}

// The frame whose time is nearest to mediaTime.
function frameAt(mediaTime) {
  const t = mediaTime + (state.burned ? state.times[0] : state.offset);
  const times = state.times;
  let lo = 0, hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t) lo = mid; else hi = mid - 1;
  }
  if (lo + 1 < times.length && times[lo + 1] - t < t - times[lo]) lo += 1;
  return lo;
}

function watchFrames() {
  const onFrame = (now, metadata) => {
    if (!state.calibrated && video.currentTime === 0) {
      // Frame 0 on screen: its mediaTime fixes how this browser counts the file's times
      // (an edit list starting between two frames shifts them by the fraction).
      state.offset = state.times[0] - metadata.mediaTime;
      state.calibrated = true;
    }
    showFrame(frameAt(metadata.mediaTime));
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

function showFrame(n) {
  state.frame = n;
  $('frame').textContent = n;
  $('time').textContent = state.times[n].toFixed(3);
  document.body.dataset.frame = n;
  if (state.file.duration_seconds > 0) {
    $('seekbar').value = Math.round((frameTime(n) / state.file.duration_seconds) * 1000);
  }
  if (state.stopAt !== null && n >= state.stopAt) {
    video.pause();
    state.stopAt = null;
  }
  draw(n);
}

async function detectionsOf(n) {
  const start = Math.floor(n / WINDOW) * WINDOW;
  if (!state.windows.has(start)) {
    const end = Math.min(start + WINDOW, state.file.frames) - 1;
    const promise = api(`/file/${state.file.uuid}/detections?start_frame=${start}&end_frame=${end}`)
      .then((page) => {
        const byFrame = new Map();
        for (const d of page.detections) {
          if (!byFrame.has(d.frame)) byFrame.set(d.frame, []);
          byFrame.get(d.frame).push(d);
        }
        return byFrame;
      });
    state.windows.set(start, promise);
    promise.catch(() => state.windows.delete(start));
  }
  return (await state.windows.get(start)).get(n) || [];
}

function color(d) {
  const key = d.trace_id !== null && d.trace_id !== undefined ? 'trace' + d.trace_id : d.label;
  let hash = 0;
  for (const c of key) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 90%, 55%)`;
}

async function draw(n) {
  const rect = video.getBoundingClientRect();
  canvas.width = Math.round(rect.width);
  canvas.height = Math.round(rect.height);
  canvas.style.width = rect.width + 'px';
  canvas.style.height = rect.height + 'px';
  if (state.burned) return;
  const detections = await detectionsOf(n);
  if (state.frame !== n) return; // a newer frame is on screen
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const sx = canvas.width / state.file.width;
  const sy = canvas.height / state.file.height;
  ctx.font = '12px sans-serif';
  ctx.textBaseline = 'bottom';
  for (const d of detections) {
    const highlighted = state.highlight !== null && d.trace_id === state.highlight;
    if (state.highlight !== null && !highlighted) ctx.globalAlpha = 0.35;
    ctx.strokeStyle = color(d);
    ctx.lineWidth = highlighted ? 4 : 2;
    ctx.strokeRect(d.x * sx, d.y * sy, d.w * sx, d.h * sy);
    const label = d.trace_id !== null ? `#${d.trace_id}${d.identity ? ' ' + d.identity : ''}`
      : `${d.label}${d.confidence !== null ? ' ' + d.confidence.toFixed(2) : ''}`;
    const width = ctx.measureText(label).width + 6;
    ctx.fillStyle = color(d);
    ctx.fillRect(d.x * sx, d.y * sy - 16, width, 16);
    ctx.fillStyle = '#000';
    ctx.fillText(label, d.x * sx + 3, d.y * sy - 2);
    ctx.globalAlpha = 1;
  }
}

// Shows frame n, paused: the middle of its display interval, so that rounding either way
// still shows it.
function seekFrame(n) {
  n = Math.max(0, Math.min(state.file.frames - 1, n));
  const start = frameTime(n);
  const end = n + 1 < state.times.length ? frameTime(n + 1) : start + 1 / state.file.fps;
  video.pause();
  video.currentTime = (start + end) / 2;
}

function playTrace(t) {
  state.highlight = t.trace_id;
  for (const li of $('traces').children) li.classList.toggle('selected', li.dataset.trace == t.trace_id);
  state.stopAt = t.last_frame;
  video.currentTime = frameTime(t.first_frame);
  video.play();
}

// ---- storyboard on the seek bar ----

function loadStoryboard() {
  for (const old of video.querySelectorAll('track')) old.remove();
  state.cues = [];
  const track = document.createElement('track');
  track.kind = 'metadata';
  track.src = mediaUrl('/storyboard.vtt', { width: 160, interval: Math.max(1, Math.ceil(state.file.duration_seconds / 100)) });
  track.addEventListener('load', () => {
    state.cues = Array.from(track.track.cues || []);
    document.body.dataset.storyboard = state.cues.length;
  });
  video.append(track);
  track.track.mode = 'hidden';
}

function showPreview(event) {
  const bar = $('seekbar').getBoundingClientRect();
  const fraction = Math.min(1, Math.max(0, (event.clientX - bar.left) / bar.width));
  const time = fraction * state.file.duration_seconds;
  const cue = state.cues.find((c) => c.startTime <= time && time < c.endTime);
  if (!cue) { $('preview').hidden = true; return; }
  const [url, fragment] = cue.text.trim().split('#xywh=');
  const [x, y, w, h] = fragment.split(',').map(Number);
  const base = new URL(track_base(), location.href);
  const image = $('preview-image');
  image.style.backgroundImage = `url("${new URL(url, base)}")`;
  image.style.backgroundPosition = `-${x}px -${y}px`;
  image.style.width = w + 'px';
  image.style.height = h + 'px';
  $('preview-time').textContent = time.toFixed(1) + ' s';
  $('preview').style.left = fraction * 100 + '%';
  $('preview').hidden = false;
}

function track_base() { return video.querySelector('track').src; }

// ---- clips ----

function clipQuery() {
  return `start_frame=${state.inFrame}&end_frame=${state.outFrame}&format=${$('clip-format').value}`;
}

function updateClip() {
  $('in').textContent = state.inFrame ?? '-';
  $('out').textContent = state.outFrame ?? '-';
  const ready = state.inFrame !== null && state.outFrame !== null && state.inFrame <= state.outFrame;
  $('download').hidden = !ready;
  $('copy-curl').disabled = !ready;
  $('copy-explain').disabled = !ready;
  if (!ready) { $('clip-lines').textContent = ''; return; }
  const format = $('clip-format').value;
  $('download').href = mediaUrl('/clip', Object.fromEntries(new URLSearchParams(clipQuery())));
  $('download').download = `${state.file.uuid}_${state.inFrame}-${state.outFrame}.${format}`;
  $('clip-lines').textContent = curlLine() + '\n' + explainLine();
}

function curlLine() {
  const path = `${API}/file/${state.file.uuid}/clip?${clipQuery()}`;
  return `curl -o clip.${$('clip-format').value} -H "Authorization: Bearer ${state.token}" "${location.origin}${path}"`;
}

function explainLine() {
  return `framecast explain '${API}/file/${state.file.uuid}/clip?${clipQuery()}'`;
}

async function copy(text) {
  try { await navigator.clipboard.writeText(text); status('copied'); } catch (e) { status('copy: select the line below'); }
}

// ---- wiring ----

$('token-form').addEventListener('submit', (e) => { e.preventDefault(); useToken($('token').value); });
$('more-files').addEventListener('click', () => loadFiles(state.filesNext).catch((e) => status(e.message)));
$('more-traces').addEventListener('click', () => loadTraces(state.tracesNext).catch((e) => status(e.message)));
$('play').addEventListener('click', () => (video.paused ? video.play() : video.pause()));
$('prev').addEventListener('click', () => seekFrame(state.frame - 1));
$('next').addEventListener('click', () => seekFrame(state.frame + 1));
$('jump-form').addEventListener('submit', (e) => { e.preventDefault(); seekFrame(Number($('jump').value)); });
$('burned').addEventListener('change', (e) => { state.burned = e.target.checked; setSource(); });
$('seekbar').addEventListener('input', (e) => {
  video.currentTime = (Number(e.target.value) / 1000) * state.file.duration_seconds;
});
$('seekbar').addEventListener('mousemove', showPreview);
$('seekbar').addEventListener('mouseleave', () => { $('preview').hidden = true; });
$('set-in').addEventListener('click', () => { state.inFrame = state.frame; updateClip(); });
$('set-out').addEventListener('click', () => { state.outFrame = state.frame; updateClip(); });
$('clip-format').addEventListener('change', updateClip);
$('copy-curl').addEventListener('click', () => copy(curlLine()));
$('copy-explain').addEventListener('click', () => copy(explainLine()));
video.addEventListener('play', () => { $('play').textContent = 'Pause'; });
video.addEventListener('pause', () => { $('play').textContent = 'Play'; });
window.addEventListener('resize', () => { if (state.frame >= 0) draw(state.frame); });
document.addEventListener('keydown', (e) => {
  if (!state.file || e.target.tagName === 'INPUT') return;
  if (e.key === 'ArrowRight') { e.preventDefault(); seekFrame(state.frame + 1); }
  if (e.key === 'ArrowLeft') { e.preventDefault(); seekFrame(state.frame - 1); }
  if (e.key === ' ') { e.preventDefault(); video.paused ? video.play() : video.pause(); }
});

// The token from the address (#access_token=..., as `framecast token --url` prints), else
// from this tab's session.
(function start() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('access_token') || sessionStorage.getItem('framecast-token');
  if (fragment.has('access_token')) history.replaceState(null, '', location.pathname);
  if (token) useToken(token); else status('paste a token to start');
})();

// For tests and scripts: the state, read-only by convention.
window.framecast = { state, seekFrame, openFile, frameAt, frameTime, color };
