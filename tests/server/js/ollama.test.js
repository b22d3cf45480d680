// The Ollama API through the official `ollama` npm client: store routes, generate and chat
// (streaming and not), stats and cached_tokens, load/unload, tokenize, and error statuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, fakeModel, skipReason, echo, waitFor } from './harness.js';

const skip = await skipReason();
if (skip) console.log(`SKIP server e2e: ${skip}`);
let server, ollama, modelPath;

before(async () => {
  if (skip) return;
  const { Ollama } = await import('ollama');
  server = await startServer();
  ollama = new Ollama({ host: server.url });
  modelPath = fakeModel(server.dir, 'tiny');
  // ollama-js refuses local paths in create(); the route takes them (runnel's documented use).
  const res = await server.post('/api/create', { model: 'tiny', from: modelPath, stream: false });
  assert.equal(res.json.status, 'success');
});
after(async () => { await server?.stop(); });

test('version, tags, show, copy, delete', { skip: skip ?? false }, async () => {
  assert.match((await ollama.version()).version, /^\d+\.\d+\.\d+/);
  const tags = await ollama.list();
  assert.deepEqual(tags.models.map((m) => m.name), ['tiny:latest']);
  assert.equal(tags.models[0].size, 1000);
  assert.equal(tags.models[0].details.format, 'gguf');
  const show = await ollama.show({ model: 'tiny' });
  assert.equal(show.model_info['general.architecture'], 'fake');
  assert.equal(show.model_info['fake.context_length'], 64);
  assert.equal(show.details.quantization_level, 'F32');
  assert.match(show.template, /messages/);
  await ollama.copy({ source: 'tiny', destination: 'tiny2:v1' });
  assert.deepEqual((await ollama.list()).models.map((m) => m.name), ['tiny2:v1', 'tiny:latest']);
  await ollama.delete({ model: 'tiny2:v1' });
  assert.deepEqual((await ollama.list()).models.map((m) => m.name), ['tiny:latest']);
  await assert.rejects(ollama.delete({ model: 'tiny2:v1' }), (e) => e.status_code === 404);
});

test('generate, not streaming: text and stats', { skip: skip ?? false }, async () => {
  const r = await ollama.generate({ model: 'tiny', prompt: 'alpha beta gamma', stream: false });
  assert.equal(r.response, 'alpha beta gamma');
  assert.equal(r.done, true);
  assert.equal(r.done_reason, 'stop');
  assert.equal(r.prompt_eval_count, 3);
  assert.equal(r.eval_count, 3);
  assert.ok(r.total_duration > 0 && r.eval_duration > 0);
  assert.equal(typeof r.cached_tokens, 'number');
});

test('generate, streaming: chunks in order, cached_tokens on a shared prefix', { skip: skip ?? false }, async () => {
  const prompt = 'one two three four five six';
  const first = await ollama.generate({ model: 'tiny', prompt, stream: true, options: { num_predict: 8 } });
  let text = '';
  let last;
  let n = 0;
  for await (const part of first) { text += part.response; last = part; n++; }
  assert.equal(text, echo(prompt, 8));
  assert.equal(n, 9);  // 8 chunks + the final message
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'length');
  assert.equal(last.eval_count, 8);
  const second = await ollama.generate({ model: 'tiny', prompt: 'one two three other', stream: false });
  assert.equal(second.cached_tokens, 3);
  assert.equal(second.prompt_eval_count, 4);
});

test('chat, streaming and not', { skip: skip ?? false }, async () => {
  const messages = [
    { role: 'system', content: 'ignored by the fake' },
    { role: 'user', content: 'hello there runnel' },
  ];
  const r = await ollama.chat({ model: 'tiny', messages, stream: false });
  assert.equal(r.message.role, 'assistant');
  assert.equal(r.message.content, 'hello there runnel');
  assert.equal(r.done, true);
  assert.equal(typeof r.cached_tokens, 'number');
  let text = '';
  let final;
  for await (const part of await ollama.chat({ model: 'tiny', messages, stream: true })) {
    text += part.message.content;
    if (part.done) final = part;
  }
  assert.equal(text, 'hello there runnel');
  assert.equal(final.done_reason, 'stop');
  assert.equal(final.cached_tokens, 3);  // the same prompt again
});

test('empty prompt loads the model; keep_alive 0 unloads it', { skip: skip ?? false }, async () => {
  const other = fakeModel(server.dir, 'other');
  assert.equal((await server.post('/api/create', { model: 'other', from: other })).status, 200);
  const loaded = await ollama.generate({ model: 'other', prompt: '' });
  assert.equal(loaded.done, true);
  assert.equal(loaded.done_reason, 'load');
  const ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'other:latest'), JSON.stringify(ps));
  const unloaded = await ollama.generate({ model: 'other', prompt: '', keep_alive: 0 });
  assert.equal(unloaded.done_reason, 'unload');
  assert.ok(await waitFor(async () => !(await ollama.ps()).models.some((m) => m.name === 'other:latest')));
  // keep_alive as a duration: listed right after, gone shortly after. The window is wide enough
  // that a loaded CI machine answering the /api/ps call late does not miss it.
  await ollama.generate({ model: 'other', prompt: 'a b', keep_alive: '2s', stream: false });
  assert.ok((await ollama.ps()).models.some((m) => m.name === 'other:latest'));
  assert.ok(await waitFor(async () => !(await ollama.ps()).models.some((m) => m.name === 'other:latest'), 8000));
});

test('tokenize, detokenize, cache, metrics', { skip: skip ?? false }, async () => {
  const t = await server.post('/api/tokenize', { model: 'tiny', content: 'hi' });
  assert.equal(t.status, 200);
  assert.deepEqual(t.json.tokens, [1, 'h'.charCodeAt(0) + 3, 'i'.charCodeAt(0) + 3]);
  const d = await server.post('/api/detokenize', { model: 'tiny', tokens: t.json.tokens });
  assert.equal(d.json.content, 'hi');
  const c = await (await fetch(`${server.url}/api/cache`)).json();
  assert.ok(c.models.find((m) => m.model === 'tiny:latest').cache.prompts >= 1);
  assert.ok((await server.metric('runnel_generations_total')) >= 4);
});

test('errors: bad JSON 400, unknown model 404, bad names 400, bad options 400, 413', { skip: skip ?? false }, async () => {
  let r = await server.post('/api/generate', '{"model": "tiny", "prompt": ');
  assert.equal(r.status, 400);
  assert.match(r.json.error, /invalid JSON/);
  r = await server.post('/api/chat', { model: 'tiny', messages: [{ role: 'robot', content: 'x' }] });
  assert.equal(r.status, 400);
  await assert.rejects(ollama.generate({ model: 'nope', prompt: 'x' }),
    (e) => e.status_code === 404 && /not found/.test(e.message));
  await assert.rejects(ollama.chat({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status_code === 404);
  for (const name of ['../x', '/abs/x', 'a\u0000b', 'a/b/c']) {
    r = await server.post('/api/create', { model: name, from: modelPath, stream: false });
    assert.equal(r.status, 400, name);
    assert.match(r.json.error, /name/);
  }
  r = await server.post('/api/copy', { source: 'tiny', destination: '../../etc/x' });
  assert.equal(r.status, 400);
  r = await server.post('/api/create', { model: 'q', from: modelPath, quantize: 'q4_0' });
  assert.equal(r.status, 400);
  // Validation inside the runner comes back before streaming: a 400, not a broken stream.
  await assert.rejects(ollama.generate({ model: 'tiny', prompt: 'x', options: { temperature: 'hot' } }),
    (e) => e.status_code === 400 && /temperature/.test(e.message));
  await assert.rejects(ollama.generate({ model: 'tiny', prompt: 'a b c', stream: true, options: { num_ctx: 2 } }),
    (e) => e.status_code === 400);
  r = await server.post('/api/generate', { model: 'tiny', prompt: 'x '.repeat(100), options: { num_ctx: 8 } });
  assert.equal(r.status, 400);
  assert.match(r.json.error, /context/);
  r = await server.post('/api/generate', { model: 'tiny', prompt: 'x'.repeat(33 << 20) });
  assert.equal(r.status, 413);
});

test('an error after streaming started is a final stream message', { skip: skip ?? false }, async () => {
  const stream = await ollama.generate({ model: 'tiny', prompt: 'FAIL_LATE a b c d', stream: true });
  let text = '';
  await assert.rejects(async () => { for await (const p of stream) text += p.response; }, /FAIL_LATE/);
  assert.equal(text, 'FAIL_LATE a ');
  // Raw NDJSON: the last line is {"error": ...}.
  const r = await server.post('/api/generate', { model: 'tiny', prompt: 'FAIL_LATE a b c d' });
  const lines = r.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(r.status, 200);
  assert.match(lines.at(-1).error, /FAIL_LATE/);
  // And the model still works.
  assert.equal((await ollama.generate({ model: 'tiny', prompt: 'ok', stream: false })).response, 'ok');
});
