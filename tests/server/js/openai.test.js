// The OpenAI-compatible API through the official `openai` npm client: chat completions and
// completions, streaming (SSE, [DONE]) and not, usage with cached_tokens, models, errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, fakeModel, skipReason, echo } from './harness.js';

const skip = await skipReason();
if (skip) console.log(`SKIP server e2e: ${skip}`);
let server, client;

before(async () => {
  if (skip) return;
  const { default: OpenAI } = await import('openai');
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const r = await server.post('/api/create', { model: 'tiny', from: fakeModel(server.dir, 'tiny'), stream: false });
  assert.equal(r.status, 200);
});
after(async () => { await server?.stop(); });

test('models', { skip: skip ?? false }, async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['tiny:latest']);
});

test('chat completion, not streaming', { skip: skip ?? false }, async () => {
  const r = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'red green blue' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, 'red green blue');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.prompt_tokens, 3);
  assert.equal(r.usage.completion_tokens, 3);
  assert.equal(r.usage.total_tokens, 6);
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);
  const again = await client.chat.completions.create({
    model: 'tiny', max_tokens: 2, messages: [{ role: 'user', content: 'red green blue' }],
  });
  assert.equal(again.choices[0].message.content, 'red green');
  assert.equal(again.choices[0].finish_reason, 'length');
  assert.equal(again.usage.prompt_tokens_details.cached_tokens, 3);
});

test('chat completion, streaming with usage', { skip: skip ?? false }, async () => {
  const stream = await client.chat.completions.create({
    model: 'tiny', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'cyan magenta yellow key' }],
  });
  let text = '';
  let finish = null;
  let usage = null;
  let first = true;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (first) { assert.equal(c.delta.role, 'assistant'); first = false; }
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, 'cyan magenta yellow key');
  assert.equal(finish, 'stop');
  assert.equal(usage.prompt_tokens, 4);
  assert.equal(usage.completion_tokens, 4);
  assert.equal(typeof usage.prompt_tokens_details.cached_tokens, 'number');
  // The raw SSE ends with [DONE].
  const raw = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', stream: true, messages: [{ role: 'user', content: 'a b' }] }),
  });
  assert.match(raw.headers.get('content-type'), /text\/event-stream/);
  const body = await raw.text();
  assert.ok(body.trimEnd().endsWith('data: [DONE]'), body);
});

test('completions, streaming and not', { skip: skip ?? false }, async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'once upon a time', max_tokens: 6 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text, echo('once upon a time', 6));
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);
  let text = '';
  for await (const c of await client.completions.create({ model: 'tiny', prompt: 'once upon a time', stream: true })) {
    text += c.choices[0]?.text ?? '';
  }
  assert.equal(text, 'once upon a time');
});

test('errors', { skip: skip ?? false }, async () => {
  const { default: OpenAI } = await import('openai');
  await assert.rejects(
    client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && /not found/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && /messages/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', temperature: 'hot', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 400);
  // An error after the stream started arrives as an SSE error event; the client throws.
  const stream = await client.chat.completions.create({
    model: 'tiny', stream: true, messages: [{ role: 'user', content: 'FAIL_LATE one two three' }],
  });
  let text = '';
  await assert.rejects(async () => {
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  }, /FAIL_LATE/);
  assert.equal(text, 'FAIL_LATE one ');
  const r = await server.post('/v1/chat/completions', '{bad');
  assert.equal(r.status, 400);
  assert.equal(r.json.error.type, 'invalid_request_error');
});
