// How a voice or a job document looks on the page.
import { el, when } from './rows.js';

function head(row, title, label) {
  row.append(el('div', { class: 'row-head' },
    el('span', { class: 'name' }, title),
    el('span', { class: 'status', role: 'status', 'aria-label': label })));
  row.append(el('p', { class: 'detail' }));
  row.append(el('p', { class: 'error', hidden: true }));
}

function setCommon(row, status, error, detail) {
  row.dataset.status = status;
  row.querySelector('.status').textContent = status;
  row.querySelector('.detail').textContent = detail;
  const err = row.querySelector('.error');
  err.hidden = !(status === 'failed' && error);
  err.textContent = status === 'failed' ? (error || '') : '';
}

export function buildVoice(row, voiceId) {
  head(row, voiceId, `Status of voice ${voiceId}`);
}

export function showVoice(row, voice) {
  const clip = voice.clip || {};
  const parts = [];
  if (clip.duration_s) parts.push(`${Number(clip.duration_s).toFixed(1)} s clip`);
  if (voice.warnings && voice.warnings.length) parts.push(voice.warnings.join('; '));
  if (voice.created_at) parts.push(`added ${when(voice.created_at)}`);
  setCommon(row, voice.status || 'processing', voice.error, parts.join(' · '));
}

export function buildJob(row, jobId) {
  head(row, jobId, `Status of job ${jobId}`);
  row.append(el('progress', { max: 1, value: 0, 'aria-label': `Progress of job ${jobId}`, hidden: true }));
  row.append(el('p', { class: 'parts', hidden: true }));
  row.append(el('audio', { controls: true, preload: 'metadata', hidden: true, 'aria-label': `Audio of job ${jobId}` }));
  row.append(el('p', { class: 'player', hidden: true, 'aria-live': 'polite' }));
  row.append(el('a', { class: 'download', hidden: true }, 'Download'));
}

export function showJob(row, job) {
  const status = job.status || 'queued';
  const parts = [];
  if (job.voice_id) parts.push(`voice ${job.voice_id}`);
  if (job.language) parts.push(job.language);
  if (job.format) parts.push(job.format);
  if (job.duration_s) parts.push(`${Number(job.duration_s).toFixed(1)} s`);
  if (job.created_at) parts.push(when(job.created_at));
  setCommon(row, status, job.error, parts.join(' · '));
  const bar = row.querySelector('progress');
  bar.hidden = !(status === 'queued' || status === 'processing');
  bar.value = Math.max(0, Math.min(1, Number(job.progress) || 0));
  bar.textContent = `${Math.round(bar.value * 100)}%`;
  // While the parts are followed live (web/src/streams.js) their count is fresher than the job's aggregate.
  if (row.dataset.partsLive !== '1') showParts(row, Number(job.parts_done) || 0, Number(job.parts_total) || 0);
}

export function showParts(row, done, total) {
  const line = row.querySelector('.parts');
  line.hidden = !(total > 1);
  line.textContent = total > 1 ? `${Math.min(done, total)} / ${total} parts done` : '';
  row.dataset.partsDone = String(Math.min(done, total));
}

const PLAYER_TEXT = {
  ready: (s, total) => `Part ${s.index + 1} of ${total} is ready to play.`,
  playing: (s, total) => `Playing part ${s.index + 1} of ${total}.`,
  between: (s, total) => `Part ${s.index + 1} of ${total} follows after its pause.`,
  waiting: (s, total) => (s.index < total ? `Waiting for part ${s.index + 1} of ${total} to be rendered…`
    : 'Waiting for the final file…'),
};

export function showPlayer(row, state, total) {
  const line = row.querySelector('.player');
  const text = PLAYER_TEXT[state.mode];
  line.hidden = !(text && total > 1);
  line.textContent = line.hidden ? '' : text(state, total);
  row.dataset.player = state.mode;
  row.dataset.playerPart = state.index ?? '';
}

export function outputName(jobId, job) {
  const object = job.output_object || '';
  return object ? object.split('/').pop() : `${jobId}.${job.format || 'wav'}`;
}

// The final file: into the player (or handed to the part player, which continues it where the listener is)
// and the download link.
export function attachAudio(row, blob, name, player) {
  const url = URL.createObjectURL(blob);
  const audio = row.querySelector('audio');
  if (player) player.finish(url, name);
  else {
    audio.src = url;
    audio.hidden = false;
  }
  const link = row.querySelector('a.download');
  link.href = url;
  link.download = name;
  link.textContent = `Download ${name}`;
  link.hidden = false;
}
