// A job's parts, live: while a job renders, one onSnapshot on users/<uid>/jobs/<job_id>/parts feeds the
// row's PartPlayer (web/src/player.js), so a long job plays from its first part; when the job is done the
// final file takes over. A re-upload of the request (a new generation) starts a new player.
import { collection, onSnapshot } from 'firebase/firestore';
import { PartPlayer } from './player.js';
import { showParts, showPlayer } from './views.js';

const LIVE = new Set(['queued', 'processing']);
const generationOf = (doc) => String((doc && doc.source && doc.source.generation) ?? '');

export class Streams {
  constructor(db, uid, api, notice) {
    Object.assign(this, { db, uid, api, notice });
    this.jobs = new Map(); // job_id -> { generation, player, stop, total }
  }

  // Called for every snapshot of a job; returns the job's player, if it has one.
  follow(jobId, job, row) {
    let entry = this.jobs.get(jobId);
    if (entry && entry.generation !== generationOf(job)) entry = this.drop(jobId);
    const total = Number(job.parts_total) || 0;
    if (!entry && LIVE.has(job.status) && total > 0) entry = this.#start(jobId, job, row);
    if (!entry) return null;
    if (entry.total !== total) {
      entry.total = total;
      entry.player.update(entry.parts, total);
    }
    if (!LIVE.has(job.status)) {
      entry.stop();
      entry.stop = () => {};
      row.dataset.partsLive = '';
    }
    if (job.status === 'failed') {
      this.drop(jobId);
      row.querySelector('audio').hidden = true;
      showPlayer(row, { mode: 'empty' }, 0);
      return null;
    }
    return entry.player;
  }

  drop(jobId) {
    const entry = this.jobs.get(jobId);
    if (entry) {
      entry.stop();
      entry.player.dispose();
      this.jobs.delete(jobId);
    }
    return null;
  }

  stopAll() {
    for (const jobId of [...this.jobs.keys()]) this.drop(jobId);
  }

  #start(jobId, job, row) {
    const generation = generationOf(job);
    const player = new PartPlayer(row.querySelector('audio'), {
      fetchPart: (index) => this.api.part(jobId, index),
      label: (index) => `${jobId}/parts/${index}.wav`,
      onChange: (state) => showPlayer(row, state, entry.total),
    });
    const entry = { generation, player, parts: [], total: Number(job.parts_total) || 0, stop: () => {} };
    this.jobs.set(jobId, entry);
    entry.stop = onSnapshot(collection(this.db, 'users', this.uid, 'jobs', jobId, 'parts'), (snap) => {
      const parts = [];
      for (const doc of snap.docs) {
        const index = Number(doc.id);
        const part = doc.data();
        const mine = !generation || !generationOf(part) || generationOf(part) === generation;
        if (Number.isInteger(index) && index >= 0 && index < entry.total && mine) parts[index] = part;
      }
      entry.parts = parts;
      row.dataset.partsLive = '1';
      showParts(row, parts.filter((p) => p && p.status === 'done').length, entry.total);
      player.update(parts, entry.total);
    }, (err) => this.notice(`Live updates of the parts of ${jobId} stopped: ${err.message}`));
    return entry;
  }
}
