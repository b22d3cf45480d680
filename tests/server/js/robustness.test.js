// Sturdiness over real HTTP: a client that disconnects mid-stream cancels its runner request at
// once; a runner killed with SIGKILL mid-stream ends that stream with an error and the next
// request works; 16 concurrent streams of which half are aborted at random points; LRU unloading
// under a memory budget.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, fakeModel, skipReason, echo, waitFor } from './harness.js';

const skip = await skipReason();
if (skip) console.log(`SKIP server e2e: ${skip}`);
let server, ollama, OpenAI;

before(async () => {
  if (skip) return;
  const { Ollama } = await import('ollama');
  ({ default: OpenAI } = await import('openai'));
  server = await startServer();
  ollama = new Ollama({ host: server.url });
  const r = await server.post('/api/create', { model: 'tiny', from: fakeModel(server.dir, 'tiny'), stream: false });
  assert.equal(r.status, 200);
});
after(async () => { await server?.stop(); });

const opts = { skip: skip ?? false };

async function runnerIdle() {
  return (await server.metric('runnel_runner_active')) === 0;
}

test('client disconnect mid-stream cancels the runner request at once (fetch and openai)', opts, async () => {
  await ollama.generate({ model: 'tiny', prompt: 'warm up', stream: false });
  const before = await server.metric('runnel_runner_cancelled_total');
  // 1. Plain fetch + AbortController on the Ollama NDJSON stream.
  const ac = new AbortController();
  const res = await fetch(`${server.url}/api/generate`, {
    method: 'POST', signal: ac.signal,
    body: JSON.stringify({ model: 'tiny', prompt: 'a b c d', options: { num_predict: 50 } }),
  });
  const reader = res.body.getReader();
  await reader.read();
  const t0 = Date.now();
  ac.abort();
  assert.ok(await waitFor(async () => (await server.metric('runnel_runner_cancelled_total')) === before + 1, 2000));
  assert.ok(await waitFor(runnerIdle, 1000));
  assert.ok(Date.now() - t0 < 500, `cancel took ${Date.now() - t0} ms`);
  // 2. The openai client's own abort on an SSE stream.
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: 'tiny', stream: true, max_tokens: 50, messages: [{ role: 'user', content: 'x y z' }],
  });
  let n = 0;
  for await (const _ of stream) { if (++n === 3) break; }  // leaving the loop aborts the request
  assert.ok(await waitFor(async () => (await server.metric('runnel_runner_cancelled_total')) === before + 2, 2000));
  assert.ok(await waitFor(runnerIdle, 1000));
  assert.ok((await server.metric('runnel_client_disconnects_total')) >= 2);
  // The model still serves.
  assert.equal((await ollama.generate({ model: 'tiny', prompt: 'still here', stream: false })).response, 'still here');
});

test('client disconnect mid-prefill (streaming or not) cancels within one step', opts, async () => {
  for (const stream of [true, false]) {
    const before = await server.metric('runnel_runner_cancelled_total');
    const ac = new AbortController();
    const pending = fetch(`${server.url}/api/generate`, {
      method: 'POST', signal: ac.signal,
      body: JSON.stringify({ model: 'tiny', prompt: 'PREFILL a b', stream }),
    }).then((r) => r.text()).catch(() => 'aborted');
    // Wait until the runner is in its 2 s prefill, then leave.
    assert.ok(await waitFor(async () => (await server.metric('runnel_runner_active')) === 1, 2000));
    const t0 = Date.now();
    ac.abort();
    assert.equal(await pending, 'aborted');
    assert.ok(await waitFor(async () => (await server.metric('runnel_runner_cancelled_total')) === before + 1, 1500),
      `stream=${stream}: not cancelled`);
    assert.ok(await waitFor(runnerIdle, 1000));
    // Well inside the 2 s prefill, with room for a loaded CI machine.
    assert.ok(Date.now() - t0 < 1000, `stream=${stream}: cancel took ${Date.now() - t0} ms`);
  }
});

test('a runner killed with SIGKILL mid-stream: the stream ends with an error, the next request works', opts, async () => {
  const stream = await ollama.generate({ model: 'tiny', prompt: 'p q r', stream: true, options: { num_predict: 100 } });
  let n = 0;
  const crashes = await server.metric('runnel_runner_crashes_total');
  await assert.rejects(async () => {
    for await (const _ of stream) {
      if (++n === 3) process.kill(await server.metric('runnel_runner_pid'), 'SIGKILL');
    }
  }, /runner/);
  assert.ok(n >= 3 && n < 100);
  const r = await ollama.generate({ model: 'tiny', prompt: 'after the crash', stream: false });
  assert.equal(r.response, 'after the crash');
  assert.equal(await server.metric('runnel_runner_crashes_total'), crashes + 1);
  // OpenAI too: a new stream works on the restarted runner.
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const c = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'ok then' }] });
  assert.equal(c.choices[0].message.content, 'ok then');
});

test('16 concurrent streams, half aborted at random points: the others complete exactly', opts, async () => {
  const { Ollama } = await import('ollama');
  const cancelledBefore = await server.metric('runnel_runner_cancelled_total');
  const jobs = Array.from({ length: 16 }, async (_, i) => {
    const client = new Ollama({ host: server.url });  // abort() is per client
    const prompt = Array.from({ length: 3 + (i % 5) }, (_, k) => `w${i}_${k}`).join(' ');
    const n = 30;
    const stream = await client.generate({ model: 'tiny', prompt, stream: true, options: { num_predict: n } });
    const abortAt = i % 2 === 1 ? 1 + Math.floor(Math.random() * 20) : -1;
    let text = '';
    let chunks = 0;
    let final = null;
    try {
      for await (const part of stream) {
        text += part.response;
        if (part.done) final = part;
        if (++chunks === abortAt) client.abort();
      }
    } catch (e) {
      if (abortAt < 0) throw e;
      return { aborted: true };
    }
    assert.equal(abortAt, -1, `stream ${i} should have been aborted`);
    assert.equal(text, echo(prompt, n), `stream ${i}`);
    assert.equal(final.eval_count, n);
    return { aborted: false };
  });
  const results = await Promise.all(jobs);
  assert.equal(results.filter((r) => r.aborted).length, 8);
  assert.ok(await waitFor(async () => (await server.metric('runnel_runner_cancelled_total')) === cancelledBefore + 8, 3000),
    `cancelled: ${await server.metric('runnel_runner_cancelled_total')} vs ${cancelledBefore} + 8`);
  assert.ok(await waitFor(runnerIdle, 2000));
  assert.equal(await server.metric('runnel_generations_active'), 0);
});

test('the least recently used model is unloaded when a new one would not fit', opts, async () => {
  const small = await startServer({ env: { RUNNEL_MAX_MEMORY: '3000' } });
  try {
    for (const name of ['a', 'b', 'c']) {
      const r = await small.post('/api/create', { model: name, from: fakeModel(small.dir, name, 1000 + name.charCodeAt(0)) });
      assert.equal(r.status, 200);
    }
    const gen = async (model) => (await small.post('/api/generate', { model, prompt: 'hi', stream: false })).json;
    assert.equal((await gen('a')).response, 'hi');
    assert.equal((await gen('b')).response, 'hi');
    await gen('a');  // a is now more recent than b
    assert.equal((await gen('c')).response, 'hi');
    const ps = (await (await fetch(`${small.url}/api/ps`)).json()).models.map((m) => m.name).sort();
    assert.deepEqual(ps, ['a:latest', 'c:latest']);
  } finally {
    await small.stop();
  }
});
