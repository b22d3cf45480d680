// The real runner (`runnel runner`, the engine) behind the server with the small stories260K model
// from ../shared/models: generation through both clients, greedy determinism, and 8 concurrent
// requests with the same seed producing exactly what one produces alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, skipReason } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = process.env.RUNNEL_SHARED_DIR ?? path.resolve(here, '../../../../shared');
const modelPath = path.join(shared, 'models', 'stories260K.gguf');
let skip = await skipReason();
if (!skip && !fs.existsSync(modelPath)) skip = `${modelPath} is missing`;
if (skip) console.log(`SKIP real-model e2e: ${skip}`);
let server, ollama, OpenAI;

before(async () => {
  if (skip) return;
  const { Ollama } = await import('ollama');
  ({ default: OpenAI } = await import('openai'));
  server = await startServer({ env: { RUNNEL_RUNNER_BIN: '' } });  // the real `runnel runner`
  ollama = new Ollama({ host: server.url });
  const r = await server.post('/api/create', { model: 'stories', from: modelPath, stream: false });
  assert.equal(r.status, 200, r.text);
});
after(async () => { await server?.stop(); });

const options = { temperature: 0, num_predict: 24, seed: 7 };

test('greedy generation through the ollama client, streaming and not', { skip: skip ?? false }, async () => {
  const a = await ollama.generate({ model: 'stories', prompt: 'Once upon a time', stream: false, options });
  assert.ok(a.response.length > 0);
  assert.equal(a.eval_count, 24);
  assert.equal(a.done_reason, 'length');
  assert.ok(a.prompt_eval_count > 0);
  let text = '';
  for await (const p of await ollama.generate({ model: 'stories', prompt: 'Once upon a time', stream: true, options })) {
    text += p.response;
  }
  assert.equal(text, a.response);
});

test('8 concurrent requests with the same seed match one alone', { skip: skip ?? false }, async () => {
  const sampled = { temperature: 0.8, top_k: 40, seed: 1234, num_predict: 32 };
  const alone = await ollama.generate({ model: 'stories', prompt: 'The little dog', stream: false, options: sampled });
  const many = await Promise.all(Array.from({ length: 8 }, () =>
    ollama.generate({ model: 'stories', prompt: 'The little dog', stream: false, options: sampled })));
  for (const r of many) assert.equal(r.response, alone.response);
});

test('the openai client on the real model', { skip: skip ?? false }, async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const r = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 24, temperature: 0, seed: 7 });
  assert.equal(r.usage.completion_tokens, 24);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
  assert.ok(r.choices[0].text.length > 0);
});
