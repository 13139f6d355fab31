// The page: sign in, upload voices, submit jobs, watch both live (Firestore onSnapshot), listen.
import { initializeApp } from 'firebase/app';
import {
  connectAuthEmulator, getAuth, onAuthStateChanged, signInWithEmailAndPassword, signOut,
} from 'firebase/auth';
import { collection, connectFirestoreEmulator, getFirestore, onSnapshot } from 'firebase/firestore';
import { Api } from './api.js';
import { attachCaptions } from './captions.js';
import { millis, order, upsertRow } from './rows.js';
import { Streams } from './streams.js';
import { attachAudio, buildJob, buildVoice, outputName, showJob, showVoice } from './views.js';

const $ = (id) => document.getElementById(id);
const seen = { voices: new Map(), jobs: new Map() }; // the latest snapshot of each collection
const pending = { voices: new Map(), jobs: new Map() }; // submitted, not yet seen in Firestore
const loaded = new Set(); // jobs whose audio is attached (or being fetched)
let unsubscribers = [];
let streams = null; // the parts of unfinished jobs, live (web/src/streams.js)

function notice(message) {
  $('notice').textContent = message || '';
  $('notice').hidden = !message;
}

async function loadConfig() {
  const response = await fetch('config.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`config.json: ${response.status}`);
  return response.json();
}

function connect(config) {
  const app = initializeApp({ apiKey: config.apiKey, authDomain: config.authDomain, projectId: config.projectId });
  const auth = getAuth(app);
  const db = getFirestore(app);
  const emulators = config.emulators || {};
  if (emulators.auth) connectAuthEmulator(auth, emulators.auth, { disableWarnings: true });
  if (emulators.firestore) {
    const [host, port] = emulators.firestore.split(':');
    connectFirestoreEmulator(db, host, Number(port));
  }
  return { auth, db, api: new Api(config.functionsBaseUrl, auth) };
}

function renderVoices(docs) {
  const list = $('voices');
  if (docs) seen.voices = new Map(docs.map((doc) => [doc.id, doc.data()]));
  for (const id of seen.voices.keys()) pending.voices.delete(id);
  const entries = new Map([...pending.voices, ...seen.voices]);
  for (const row of [...list.children]) if (!entries.has(row.dataset.voiceId)) row.remove();
  for (const [id, voice] of entries) showVoice(upsertRow(list, id, 'data-voice-id', (r) => { buildVoice(r, id); list.prepend(r); }), voice);
  order(list, 'data-voice-id', [...entries].sort((a, b) => millis(b[1].created_at) - millis(a[1].created_at)).map(([id]) => id));
  $('no-voices').hidden = entries.size > 0;
  const select = $('job-voice');
  const chosen = select.value;
  const ready = [...entries].filter(([, v]) => v.status === 'ready').map(([id]) => id).sort();
  select.replaceChildren(...ready.map((id) => new Option(id, id)));
  if (!ready.length) select.append(new Option('No ready voice yet', '', true, true));
  if (ready.includes(chosen)) select.value = chosen;
}

function renderJobs(docs, api) {
  const list = $('jobs');
  if (docs) seen.jobs = new Map(docs.map((doc) => [doc.id, doc.data()]));
  for (const id of seen.jobs.keys()) pending.jobs.delete(id);
  const entries = new Map([...pending.jobs, ...seen.jobs]);
  for (const row of [...list.children]) {
    if (!entries.has(row.dataset.jobId)) { streams?.drop(row.dataset.jobId); row.remove(); }
  }
  for (const [id, job] of entries) {
    const row = upsertRow(list, id, 'data-job-id', (r) => { buildJob(r, id); list.prepend(r); });
    showJob(row, job);
    const player = streams && seen.jobs.has(id) ? streams.follow(id, job, row) : null;
    if (job.status === 'done' && !loaded.has(id)) {
      loaded.add(id);
      const name = outputName(id, job);
      api.output(name).then((blob) => { attachAudio(row, blob, name, player); attachCaptions(row, job, api, name, notice); })
        .catch((err) => { loaded.delete(id); notice(`Could not load the audio of ${id}: ${err.message}`); });
    }
  }
  order(list, 'data-job-id', [...entries].sort((a, b) => millis(b[1].created_at) - millis(a[1].created_at)).map(([id]) => id));
  $('no-jobs').hidden = entries.size > 0;
}

function listen(db, uid, api) {
  const failed = (what) => (err) => notice(`Live updates of your ${what} stopped: ${err.message}`);
  streams = new Streams(db, uid, api, notice);
  unsubscribers = [
    onSnapshot(collection(db, 'users', uid, 'voices'), (snap) => renderVoices(snap.docs), failed('voices')),
    onSnapshot(collection(db, 'users', uid, 'jobs'), (snap) => renderJobs(snap.docs, api), failed('jobs')),
  ];
}

function reset() {
  unsubscribers.forEach((stop) => stop());
  unsubscribers = [];
  streams?.stopAll();
  streams = null;
  for (const map of [seen.voices, seen.jobs, pending.voices, pending.jobs]) map.clear();
  for (const audio of document.querySelectorAll('audio[src]')) URL.revokeObjectURL(audio.src.split('#')[0]);
  loaded.clear();
  $('voices').replaceChildren();
  $('jobs').replaceChildren();
  $('job-voice').replaceChildren();
}

async function busy(form, work) {
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  notice('');
  try { await work(); } catch (err) { notice(err.message); } finally { button.disabled = false; }
}

async function fillLanguages(api) {
  const select = $('job-language');
  try {
    const info = await api.modelInfo();
    const languages = info.languages || [];
    select.replaceChildren(...languages.map((code) => new Option(code, code)));
    if (languages.includes('en')) select.value = 'en';
  } catch (err) {
    notice(`Could not read the model's languages: ${err.message}`);
  }
}

async function main() {
  const { auth, db, api } = connect(await loadConfig());
  fillLanguages(api);

  $('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    busy(event.target, () => signInWithEmailAndPassword(auth, $('email').value, $('password').value));
  });
  $('sign-out').addEventListener('click', () => signOut(auth));

  $('voice-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      const file = $('voice-file').files[0];
      const voiceId = $('voice-name').value.trim();
      pending.voices.set(voiceId, { status: 'uploading', voice_id: voiceId });
      renderVoices();
      try {
        await api.uploadVoice(voiceId, file, $('voice-consent').value.trim());
      } catch (err) {
        pending.voices.delete(voiceId);
        renderVoices();
        throw err;
      }
      if (pending.voices.has(voiceId)) pending.voices.set(voiceId, { status: 'processing', voice_id: voiceId });
      renderVoices();
      form.reset();
    });
  });

  $('job-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const request = {
      text: $('job-text').value,
      voice_id: $('job-voice').value,
      language: $('job-language').value,
      format: $('job-format').value,
    };
    busy(event.target, async () => {
      if (!request.voice_id) throw new Error('Upload a voice and wait until it is ready first.');
      const { job_id: jobId } = await api.submitJob(request);
      pending.jobs.set(jobId, { status: 'queued', progress: 0, ...request });
      renderJobs(null, api);
    });
  });

  onAuthStateChanged(auth, (user) => {
    reset();
    $('sign-in').hidden = Boolean(user);
    $('workspace').hidden = !user;
    $('account').hidden = !user;
    $('who').textContent = user ? (user.email || user.uid) : '';
    document.body.dataset.signedIn = user ? 'yes' : 'no';
    if (user) listen(db, user.uid, api);
  });
}

main().catch((err) => notice(`The page could not start: ${err.message}`));
