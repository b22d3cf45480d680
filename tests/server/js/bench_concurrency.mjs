// Aggregate decode throughput over HTTP with 1, 4 and 8 concurrent streams (not a test).
// Usage: RUNNEL_BIN=build/runnel node tests/server/js/bench_concurrency.mjs [MODEL_PATH] [N_PREDICT]
import { startServer } from './harness.js';

const model = process.argv[2] ?? new URL('../../../../shared/models/stories260K.gguf', import.meta.url).pathname;
const nPredict = Number(process.argv[3] ?? 256);
const server = await startServer({ env: { RUNNEL_RUNNER_BIN: '', RUNNEL_NUM_PARALLEL: '8' } });
const gen = async (i) => {
  const r = await server.post('/api/generate', {
    model, prompt: `Once upon a time ${i}`, stream: false,
    options: { temperature: 0.8, seed: i, num_predict: nPredict },
  });
  if (r.status !== 200) throw new Error(r.text);
  return r.json.eval_count;
};
try {
  await gen(0);  // load
  for (const n of [1, 4, 8]) {
    const rates = [];
    let tokens = 0;
    for (let rep = 0; rep < 5; rep++) {
      const t0 = performance.now();
      const counts = await Promise.all(Array.from({ length: n }, (_, i) => gen(i + 1)));
      const s = (performance.now() - t0) / 1000;
      tokens = counts.reduce((a, b) => a + b, 0);
      rates.push(tokens / s);
    }
    rates.sort((a, b) => a - b);
    console.log(JSON.stringify({ streams: n, tokens_per_round: tokens, median_aggregate_tokens_per_s: +rates[2].toFixed(1) }));
  }
} finally {
  await server.stop();
}
