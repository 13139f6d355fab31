// Plays a job part by part while the rest renders, then hands over to the final file.
//
// Parts are 24 kHz WAV objects (users/<uid>/outputs/<job_id>/parts/<n>.wav). They play in order in
// the row's one <audio> element; between part n-1 and part n the player leaves exactly the designed
// pause (part n's `pause_before_s`, counted from the moment part n-1 ended, so the time spent loading
// part n is inside the pause, not added to it). A part that is not rendered yet is waited for.
// At most AHEAD parts beyond the one playing are fetched, and played parts are released, so a book
// never sits in memory. When the job is done the final file takes over at the same place in the
// text: its own silences are the designed pauses (assembly inserts part n's pause before it).
export const AHEAD = 2;
const RETRY_MS = 2000;

// Offset of each part's first sample in the final file: the pauses before parts 1..n plus parts 0..n-1.
export function partStarts(parts) {
  const starts = [];
  let at = 0;
  parts.forEach((part, index) => {
    if (index > 0) at += Number(parts[index - 1]?.duration_s) || 0;
    if (index > 0) at += Number(part?.pause_before_s) || 0;
    starts.push(at);
  });
  return starts;
}

export class PartPlayer {
  // fetchPart(index, partDoc) -> Promise<Blob>; onChange(state) after every change worth showing.
  constructor(audio, { fetchPart, onChange = () => {}, label = (index) => `part-${index}` }) {
    Object.assign(this, { audio, fetchPart, onChange, label });
    this.parts = []; // part documents by index
    this.total = 0;
    this.urls = new Map(); // index -> blob: URL of a fetched part
    this.loading = new Set();
    this.failed = new Map(); // index -> when its fetch last failed
    this.retry = null;
    this.handover = false; // the job is done while a part plays: the final file takes over at its end
    this.current = -1; // the part in the <audio> element
    this.boundary = null; // { at, index } once part `index` has ended and the next is due
    this.timer = null; // the designed pause is running; play() when it fires
    this.final = null; // the final file's URL once the job is done
    this.disposed = false;
    this.listeners = {
      ended: () => this.#ended(),
      play: () => { if (this.boundary && !this.timer && !this.final) this.boundary = null; }, // a replay
      playing: () => this.onChange(this.state()),
      pause: () => this.onChange(this.state()),
    };
    for (const [name, fn] of Object.entries(this.listeners)) audio.addEventListener(name, fn);
  }

  update(parts, total) {
    if (this.disposed || this.final) return;
    this.parts = parts;
    this.total = total;
    this.#pump();
  }

  get started() {
    return this.current > 0 || this.boundary !== null || (this.current === 0 && (this.audio.currentTime > 0 || !this.audio.paused));
  }

  state() {
    if (this.final) return { mode: 'final' };
    if (this.timer) return { mode: 'between', index: this.current };
    if (this.boundary) return { mode: 'waiting', index: this.boundary.index + 1 };
    if (this.current < 0) return { mode: 'empty' };
    return { mode: this.audio.paused ? 'ready' : 'playing', index: this.current };
  }

  // The job is done: the final file (`url`, named `name`) replaces the parts where the listener is.
  finish(url, name) {
    if (this.disposed || this.final) return;
    this.final = { url, name };
    if (!this.started) this.#swap(() => 0, false);
    else if (this.boundary) this.#handover(this.boundary);
    else if (this.audio.paused) {
      const at = (partStarts(this.parts)[this.current] || 0) + this.audio.currentTime; // before src changes
      this.#swap(() => at, false);
    } else this.handover = true; // let the part finish; #ended hands over in the pause the final file holds
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.timer);
    clearTimeout(this.retry);
    for (const [name, fn] of Object.entries(this.listeners)) this.audio.removeEventListener(name, fn);
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
  }

  #pump() {
    if (this.disposed || this.final) return;
    const from = Math.max(this.current, 0);
    for (let i = from; i <= from + AHEAD && i < this.total; i += 1) {
      const part = this.parts[i];
      const due = !this.urls.has(i) && !this.loading.has(i) && !(performance.now() - (this.failed.get(i) ?? -RETRY_MS) < RETRY_MS);
      if (part && part.status === 'done' && due) this.#fetch(i, part);
    }
    if (this.current < 0 && this.urls.has(0)) this.#load(0);
    if (this.boundary && !this.timer && this.current === this.boundary.index && this.urls.has(this.current + 1)) {
      this.#advance();
    }
    this.onChange(this.state());
  }

  async #fetch(index, part) {
    this.loading.add(index);
    let blob = null;
    try {
      blob = await this.fetchPart(index, part);
    } catch {
      // Not there (a slow listing, or deleted once the final file exists): try again later.
      this.failed.set(index, performance.now());
    } finally {
      this.loading.delete(index);
    }
    if (this.disposed || this.final) return;
    if (blob) {
      this.failed.delete(index);
      this.urls.set(index, URL.createObjectURL(blob));
      this.#pump();
    } else if (!this.retry) {
      this.retry = setTimeout(() => { this.retry = null; this.#pump(); }, RETRY_MS);
    }
  }

  #load(index) {
    this.current = index;
    this.audio.src = `${this.urls.get(index)}#${this.label(index)}`;
    this.audio.hidden = false;
    for (const [i, url] of this.urls) if (i < index) { URL.revokeObjectURL(url); this.urls.delete(i); }
  }

  #advance() {
    const { at, index } = this.boundary;
    const pause = Number(this.parts[index + 1]?.pause_before_s) || 0;
    this.#load(index + 1); // loads during the pause
    this.timer = setTimeout(() => {
      this.timer = null;
      this.boundary = null;
      this.audio.play().catch(() => { /* the listener presses play */ });
      this.onChange(this.state());
    }, Math.max(0, at + pause * 1000 - performance.now()));
  }

  #ended() {
    const boundary = { at: performance.now(), index: this.current };
    if (this.handover) {
      this.handover = false;
      this.#handover(boundary);
    } else if (!this.final) {
      this.boundary = boundary;
      this.#pump();
    }
  }

  // Part `index` ended at `at`: continue the final file from there, the designed pause included.
  #handover({ at, index }) {
    if (index + 1 >= this.total) return this.#swap(() => 0, false); // heard it all: ready to play again
    const starts = partStarts(this.parts);
    const end = (starts[index] || 0) + (Number(this.parts[index]?.duration_s) || 0);
    const next = starts[index + 1] ?? end;
    return this.#swap(() => Math.min(end + (performance.now() - at) / 1000, next), true);
  }

  #swap(position, play) {
    clearTimeout(this.timer);
    this.timer = null;
    this.boundary = null;
    const { audio } = this;
    audio.src = `${this.final.url}#${this.final.name}`;
    audio.hidden = false;
    audio.addEventListener('loadedmetadata', () => {
      audio.currentTime = Math.min(position(), audio.duration || 0);
      if (play) audio.play().catch(() => { /* the listener presses play */ });
    }, { once: true });
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
    this.onChange(this.state());
  }
}
