// The browser test's third user: a long job seeded by pytest (tests/web/pagekit.py, StreamedJob) plays
// part by part while it is still `processing`. pytest moves the job on when asked (`ask` below): it reads
// `ask {json}` lines on our stdout and answers each with one JSON line on our stdin. The finished job has
// WebVTT captions: the line under the player is sampled while the final file plays over the cues.
//
//   STREAM_JOB    the job's id (user USER_C's)
//   STREAM_PARTS  {"total", "seconds", "pauses", "cues": [{"start", "end"}]}: what pytest seeded
import { createInterface } from 'node:readline';

const replies = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function ask(what, body = {}) {
  process.stdout.write(`ask ${JSON.stringify({ what, ...body })}\n`);
  const { value, done } = await replies.next();
  if (done) throw new Error(`nobody answered ${what} (run this through pytest: tests/web/test_page_streaming.py)`);
  return JSON.parse(value);
}

export function closeAsks() {
  process.stdin.destroy();
}

// Everything the <audio> element does, seen from outside the page's code: which file, when, where.
async function observe(page, selector) {
  await page.$eval(selector, (audio) => {
    const events = (window.__audioEvents = []);
    const name = () => decodeURIComponent(audio.src.split('#')[1] || '');
    // Captured on the document: runs before the page's own listeners on the element (which may change src).
    for (const type of ['playing', 'ended', 'seeking']) {
      document.addEventListener(type, (event) => {
        if (event.target === audio) events.push({ type, src: name(), t: performance.now(), at: audio.currentTime });
      }, { capture: true });
    }
  });
}

const playing = (page, selector, name, past = 0.05) => page.waitForFunction(({ sel, want, after }) => {
  const audio = document.querySelector(sel);
  return audio && audio.src.endsWith(`#${want}`) && !audio.paused && audio.currentTime > after;
}, { sel: selector, want: name, after: past }, { timeout: 30000 });

// Like waitForFunction, but a timeout is recorded (false), not thrown: pytest says what was missing.
const settles = (page, fn, arg, timeout = 10000) => page.waitForFunction(fn, arg, { timeout }).then(() => true, () => false);

const player = (page, row, mode, part) => page.waitForSelector(
  `${row}[data-player="${mode}"][data-player-part="${part}"]`, { timeout: 30000 });

export async function userC(page, { env, signIn, step, result }) {
  const jobId = env.STREAM_JOB;
  const row = `li[data-job-id="${jobId}"]`;
  const audio = `${row} audio`;
  const part = (n) => `${jobId}/parts/${n}.wav`;
  const facts = () => page.$eval(row, (r) => ({
    status: r.dataset.status,
    parts: r.querySelector('.parts').textContent,
    player: r.querySelector('.player').textContent,
    src: decodeURIComponent(r.querySelector('audio').src.split('#')[1] || ''),
    currentTime: r.querySelector('audio').currentTime,
    paused: r.querySelector('audio').paused,
    download: r.querySelector('a.download').hidden ? null : r.querySelector('a.download').getAttribute('download'),
  }));
  const seeded = JSON.parse(env.STREAM_PARTS);
  const start = (n) => n * seeded.seconds + seeded.pauses.slice(1, n + 1).reduce((a, b) => a + b, 0);
  const s = (result.stream = { jobId });

  step('C signs in: a long job is rendering, part 0 of it is done');
  await page.setViewportSize({ width: 1000, height: 900 });
  await signIn(page, env.USER_C);
  await page.waitForFunction((sel) => {
    const audio = document.querySelector(sel);
    return audio && !audio.hidden && audio.readyState >= 1;
  }, audio, { timeout: 30000 });
  await observe(page, audio);
  s.before = await facts();

  step('C plays part 0 while the job is processing');
  await page.$eval(audio, (a) => a.play());
  await playing(page, audio, part(0), 0.3);
  s.playingPart0 = await facts();
  await page.screenshot({ path: `${env.OUT_DIR}/web-streaming-job.png`, fullPage: true });

  step('part 0 ends; part 1 is not rendered yet: the player waits');
  await player(page, row, 'waiting', 1);
  s.waiting = await facts();

  step('parts 1 and 2 are rendered: they play in order, with their pauses; C pauses in part 2');
  await ask('render', { parts: [1, 2] });
  await playing(page, audio, part(1));
  s.playingPart1 = await facts();
  await playing(page, audio, part(2));
  await page.$eval(audio, (a) => a.pause());
  s.pausedInPart2 = await facts();

  step('the last part and the final file arrive: the final file takes over where C paused');
  await ask('finish');
  await page.waitForSelector(`${row}[data-status="done"][data-player="final"] a.download:not([hidden])`, { timeout: 30000 });
  await page.waitForFunction(({ sel, want }) => {
    const a = document.querySelector(sel);
    return a.src.endsWith(`#${want}`) && a.readyState >= 1 && a.currentTime > 0 && !a.seeking;
  }, { sel: audio, want: `${jobId}.wav` }, { timeout: 30000 });
  s.handedOver = await facts();
  await page.$eval(audio, (a) => a.play());
  await playing(page, audio, `${jobId}.wav`, start(seeded.total - 1) + 0.2);
  s.final = await facts();
  s.starts = [...Array(seeded.total).keys()].map(start);
  s.events = await page.evaluate(() => window.__audioEvents);
  await page.$eval(audio, (a) => a.pause());

  await captions(page, row, seeded.cues, s);
}

// The finished job's captions: the <track>, then the `p.captions` line (each change, with the audio's time)
// while the final file plays from just before the first cue to its end.
async function captions(page, row, cues, s) {
  const audio = `${row} audio`;
  const c = (s.captions = {});
  c.loaded = await settles(page, (sel) => {
    const track = document.querySelector(`${sel} audio track`);
    return track && track.readyState === 2 && track.track.cues.length > 0;
  }, row);
  c.track = await page.$eval(row, (r) => {
    const track = r.querySelector('audio track');
    const line = r.querySelector('p.captions');
    return {
      track: track && {
        kind: track.kind, label: track.label, mode: track.track.mode, readyState: track.readyState,
        cues: [...(track.track.cues || [])].map((cue) => ({ start: cue.startTime, end: cue.endTime, text: cue.text })),
      },
      line: line && {
        live: line.getAttribute('aria-live'), afterPlayer: line.previousElementSibling === r.querySelector('.player'),
      },
    };
  });
  await page.$eval(audio, (a, at) => new Promise((resolve) => {
    a.addEventListener('seeked', resolve, { once: true });
    a.currentTime = at;
  }), cues[0].start - 0.3);
  await page.$eval(row, (r) => {
    const a = r.querySelector('audio');
    const samples = (window.__captionLine = []);
    let ended = null;
    const timer = setInterval(() => { // until 300 ms after the end, so a last cuechange is seen
      const text = r.querySelector('p.captions')?.textContent ?? null;
      if (!samples.length || samples[samples.length - 1].text !== text) samples.push({ at: a.currentTime, text });
      if (a.ended) ended ??= performance.now();
      if (ended !== null && performance.now() - ended > 300) { clearInterval(timer); window.__captionDone = true; }
    }, 20);
    return a.play();
  });
  c.ended = await settles(page, () => window.__captionDone === true, null, 30000);
  c.samples = await page.evaluate(() => window.__captionLine);
}
