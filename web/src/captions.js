// Captions under a finished job's player: the job's WebVTT (job.captions.vtt, written beside the audio when
// the request asked for "vtt") becomes a <track> of the row's <audio> element. An <audio> element draws no
// captions itself, so the track is "hidden" and the cue being spoken is written in a line under the player,
// with the speaker's name in a dialogue (<v alice>). Cue times are on the final file's timeline: while the
// part player is still finishing a part (web/src/player.js), the line stays empty; once the audio has ended too.
import { el } from './rows.js';

// The object name the API serves (`<job_id>.vtt`), or null when the job has no WebVTT captions.
export function captionsName(job) {
  const object = job && job.captions && !Array.isArray(job.captions) ? job.captions.vtt : null;
  return typeof object === 'string' && object ? object.split('/').pop() : null;
}

// The text of the cues in `cues` (a TextTrackCueList), one line, "voice: text" where a cue names its voice.
export function cueText(cues) {
  return [...(cues || [])].map((cue) => {
    const voice = /^<v(?:\.[^\s>]*)?\s+([^>]+)>/.exec(cue.text || '');
    const text = typeof cue.getCueAsHTML === 'function' ? cue.getCueAsHTML().textContent : cue.text;
    return voice ? `${voice[1].trim()}: ${text}` : text;
  }).join(' ');
}

// Fetch the job's captions and attach them to the row's player; `finalName` is the audio file's name
// (the player marks the final file's src with `#<name>`). Resolves to the <track>, or null.
export async function attachCaptions(row, job, api, finalName, notice = () => {}) {
  const name = captionsName(job);
  const audio = row.querySelector('audio');
  if (!name || !audio || audio.querySelector('track')) return null;
  let blob;
  try {
    blob = await api.output(name);
  } catch (err) {
    notice(`Could not load the captions of ${job.job_id || name}: ${err.message}`);
    return null;
  }
  const track = el('track', { kind: 'captions', label: 'Captions', srclang: job.language || 'en', default: true,
    src: URL.createObjectURL(blob) });
  const line = el('p', { class: 'captions', 'aria-live': 'polite' });
  audio.append(track);
  (row.querySelector('.player') || audio).after(line);
  track.track.mode = 'hidden';
  const onFinal = () => {
    const fragment = audio.src.split('#')[1];
    return !fragment || decodeURIComponent(fragment) === finalName;
  };
  // Chromium fires no cuechange when the audio ends at the last cue's end (cue times end with the audio), and a
  // seek (the part player handing over to the final file) may leave the active cues as they were: redraw then too.
  const show = () => {
    line.textContent = onFinal() && !audio.ended ? cueText(track.track.activeCues) : '';
  };
  track.addEventListener('cuechange', show);
  audio.addEventListener('ended', show);
  audio.addEventListener('seeked', show);
  return track;
}
