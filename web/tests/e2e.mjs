// End-to-end run of the page in Debian's headless Chromium (playwright-core), driven by pytest
// (tests/web/test_page*.py; the run itself: browser_session in tests/web/conftest.py). Everything comes in
// through environment variables; the result is one JSON object on stdout's last line, which pytest asserts on.
//
//   WEB_URL API_URL AUTH_URL API_KEY         the page, the HTTP function, the Auth emulator
//   USER_A USER_B USER_C PASSWORD            three users that exist in the Auth emulator
//   CLIP SILENCE                             a speech clip and a silent clip (WAV files)
//   STREAM_JOB STREAM_PARTS                  user C's long job, seeded by pytest (web/tests/streaming.mjs)
//   OUT_DIR                                  where the screenshot goes
//   CHROMIUM                                 the browser (default /usr/bin/chromium)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { closeAsks, userC } from './streaming.mjs';

const env = process.env;
const WAIT = Number(env.E2E_WAIT_MS || 180000);
const result = { steps: [], console: [] };
const step = (name) => { result.steps.push(name); process.stderr.write(`e2e: ${name}\n`); };

const TEXT = [
  'Hello from the voice cloning page.',
  'This paragraph is long enough to be split into several segments, so the progress bar has to move.',
  'Every segment is synthesized in turn and the worker writes its progress to the job document as it goes.',
  'The page listens to that document and redraws the bar each time a new value arrives from Firestore.',
  'When the last segment is done, the audio is encoded and stored, and the job is marked as done.',
  'Then the page fetches the finished audio through the HTTP function and puts it in the player.',
].join(' ');

async function signIn(page, email) {
  await page.goto(env.WEB_URL);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(env.PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('body[data-signed-in="yes"]', { timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll('#job-language option').length > 1, null, { timeout: 30000 });
}

async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForSelector('body[data-signed-in="no"]', { timeout: 10000 });
}

// Record a row's (status, progress) every 20 ms inside the page until it reaches a final status.
async function watchRow(page, selector) {
  await page.evaluate((sel) => {
    window.__samples = window.__samples || {};
    const samples = (window.__samples[sel] = []);
    const timer = setInterval(() => {
      const row = document.querySelector(sel);
      if (!row) return;
      const bar = row.querySelector('progress');
      const sample = { status: row.dataset.status, progress: bar && !bar.hidden ? bar.value : null };
      const last = samples[samples.length - 1];
      if (!last || last.status !== sample.status || last.progress !== sample.progress) samples.push(sample);
      if (['ready', 'done', 'failed'].includes(sample.status)) clearInterval(timer);
    }, 20);
  }, selector);
}

const samples = (page, selector) => page.evaluate((sel) => window.__samples[sel], selector);

async function rowFacts(page, selector) {
  return page.$eval(selector, (row) => ({
    status: row.dataset.status,
    error: row.querySelector('.error')?.textContent || null,
    detail: row.querySelector('.detail')?.textContent || null,
  }));
}

async function unlabeledControls(page) {
  return page.$$eval('input, select, textarea, button, progress, audio', (nodes) => nodes
    .filter((n) => !(n.labels && n.labels.length) && !n.getAttribute('aria-label') && !n.textContent.trim())
    .map((n) => n.outerHTML.slice(0, 80)));
}

async function idToken(email) {
  const url = `${env.AUTH_URL}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=${env.API_KEY}`;
  const response = await fetch(url, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: env.PASSWORD, returnSecureToken: true }),
  });
  return (await response.json()).idToken;
}

async function userA(page) {
  step('A signs in');
  await signIn(page, env.USER_A);
  result.languages = await page.$$eval('#job-language option', (opts) => opts.map((o) => o.value));
  result.unlabeled = await unlabeledControls(page);

  step('A uploads a speech clip');
  const voice = 'li[data-voice-id="alice-voice"]';
  await page.getByLabel(/Reference clip/).setInputFiles(env.CLIP);
  await page.getByLabel('Voice name').fill('alice-voice');
  await page.getByLabel(/Speaker's consent/).fill('I, Alice, agree that my voice may be cloned for this test.');
  await page.getByRole('button', { name: 'Upload voice' }).click();
  await page.waitForSelector(voice, { timeout: 10000 });
  await watchRow(page, voice);
  await page.waitForSelector(`${voice}[data-status="ready"], ${voice}[data-status="failed"]`, { timeout: WAIT });
  result.voice = { ...(await rowFacts(page, voice)), samples: await samples(page, voice) };

  step('A uploads a silent clip');
  const quiet = 'li[data-voice-id="quiet"]';
  await page.getByLabel(/Reference clip/).setInputFiles(env.SILENCE);
  await page.getByLabel('Voice name').fill('quiet');
  await page.getByRole('button', { name: 'Upload voice' }).click();
  await page.waitForSelector(`${quiet}[data-status="failed"], ${quiet}[data-status="ready"]`, { timeout: WAIT });
  result.silentVoice = await rowFacts(page, quiet);
  result.voiceOptions = await page.$$eval('#job-voice option', (opts) => opts.map((o) => o.value));

  step('A submits a job');
  await page.getByLabel('Text').fill(TEXT);
  await page.getByLabel('Voice', { exact: true }).selectOption('alice-voice');
  await page.getByLabel('Language').selectOption('en');
  await page.getByLabel('Format').selectOption('wav');
  const submitted = Date.now();
  await page.getByRole('button', { name: 'Synthesize' }).click();
  const job = 'li[data-job-id]';
  await page.waitForSelector(job, { timeout: 10000 });
  result.jobAppearedMs = Date.now() - submitted;
  const jobId = await page.$eval(job, (row) => row.dataset.jobId);
  const row = `li[data-job-id="${jobId}"]`;
  await watchRow(page, row);
  await page.waitForSelector(`${row}[data-status="done"], ${row}[data-status="failed"]`, { timeout: WAIT });
  result.job = { id: jobId, ...(await rowFacts(page, row)), samples: await samples(page, row) };

  step('A listens');
  // The final file, not only a part: the part player may already have part 0 in the <audio> element;
  // the download link is set when the final file has arrived.
  await page.waitForFunction((sel) => {
    const audio = document.querySelector(`${sel} audio`);
    const link = document.querySelector(`${sel} a.download`);
    return audio && !audio.hidden && audio.readyState >= 1 && audio.duration > 0 && link && link.getAttribute('download');
  }, row, { timeout: 30000 });
  result.audio = await page.$eval(row, (r) => ({
    duration: r.querySelector('audio').duration,
    download: r.querySelector('a.download').getAttribute('download'),
    href: r.querySelector('a.download').getAttribute('href'),
  }));
  result.screenshot = join(env.OUT_DIR, 'web-finished-job.png');
  await page.screenshot({ path: result.screenshot, fullPage: true });
  await signOut(page);
}

async function userB(page) {
  step('B signs in on a phone-sized screen');
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page, env.USER_B);
  await page.waitForTimeout(1500); // let both listeners deliver their first snapshots
  result.b = {
    voices: await page.$$eval('#voices li', (rows) => rows.map((r) => r.dataset.voiceId)),
    jobs: await page.$$eval('#jobs li', (rows) => rows.map((r) => r.dataset.jobId)),
    voiceOptions: await page.$$eval('#job-voice option', (opts) => opts.map((o) => o.value).filter(Boolean)),
    overflowX: await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth),
  };

  step("B asks for A's voice through the API");
  const response = await fetch(`${env.API_URL}/jobs`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${await idToken(env.USER_B)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: 'Let me borrow this voice.', voice_id: 'alice-voice', language: 'en', format: 'wav' }),
  });
  const { job_id: jobId } = await response.json();
  result.b.submitStatus = response.status;
  const row = `li[data-job-id="${jobId}"]`;
  await page.waitForSelector(`${row}[data-status="failed"], ${row}[data-status="done"]`, { timeout: WAIT });
  result.b.borrowed = { id: jobId, ...(await rowFacts(page, row)) };
  await page.screenshot({ path: join(env.OUT_DIR, 'web-failed-job-phone.png'), fullPage: true });
}

const profile = mkdtempSync(join(tmpdir(), 'voicecloning-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1000, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (msg) => { if (msg.type() === 'error') result.console.push(msg.text()); });
  page.on('pageerror', (err) => result.console.push(`pageerror: ${err.message}`));
  await userA(page);
  await userB(page);
  await signOut(page);
  await userC(page, { env, signIn, step, result });
  result.ok = true;
} catch (err) {
  result.ok = false;
  result.error = String(err && err.stack || err);
  try {
    const page = context && context.pages()[0];
    if (page) {
      await page.screenshot({ path: join(env.OUT_DIR, 'web-error.png'), fullPage: true });
      result.html = (await page.content()).slice(0, 20000);
    }
  } catch { /* best effort */ }
} finally {
  closeAsks();
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
