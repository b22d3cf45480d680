// Starts `runnel serve` on a free port of 127.0.0.1 with fake_runner as the runner binary and a
// fresh model store, and offers small helpers shared by the end-to-end tests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const RUNNEL_BIN = process.env.RUNNEL_BIN;
export const FAKE_RUNNER_BIN = process.env.FAKE_RUNNER_BIN;

// Why the suite cannot run here, or null.
export async function skipReason() {
  if (!RUNNEL_BIN || !fs.existsSync(RUNNEL_BIN)) return 'RUNNEL_BIN is not set or missing (run through ctest)';
  if (!FAKE_RUNNER_BIN || !fs.existsSync(FAKE_RUNNER_BIN)) return 'FAKE_RUNNER_BIN is not set or missing (run through ctest)';
  try {
    await import('ollama');
    await import('openai');
  } catch {
    return 'npm packages missing: run setup/setup.sh (npm ci in tests/server/js)';
  }
  return null;
}

// A fake model file: fake_runner only needs a readable file; the store needs a GGUF magic.
export function fakeModel(dir, name, size = 1000) {
  const p = path.join(dir, `${name}.gguf`);
  fs.writeFileSync(p, 'GGUF\n' + 'x'.repeat(size - 5));
  return p;
}

export async function startServer({ env = {} } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runnel-e2e-'));
  const child = spawn(RUNNEL_BIN, ['serve', '--host', '127.0.0.1', '--port', '0', '--no-preload'], {
    env: {
      ...process.env,
      RUNNEL_MODELS: path.join(dir, 'models'),
      RUNNEL_RUNNER_BIN: FAKE_RUNNER_BIN,
      FAKE_RUNNER_DELAY_MS: '10',
      RUNNEL_HOST: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[\d.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${stderr}`)); });
  });
  const server = {
    url, dir, child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async metrics() {
      const text = await (await fetch(`${url}/metrics`)).text();
      const values = {};
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const sp = line.lastIndexOf(' ');
        values[line.slice(0, sp)] = Number(line.slice(sp + 1));
      }
      return values;
    },
    // Sum of a metric over all label sets ("runnel_runner_cancelled_total").
    async metric(name) {
      const m = await this.metrics();
      return Object.entries(m).filter(([k]) => k === name || k.startsWith(name + '{'))
        .reduce((s, [, v]) => s + v, 0);
    },
    async post(route, body, method = 'POST') {
      const res = await fetch(`${url}${route}`, {
        method, headers: { 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json = null;
      try { json = JSON.parse(text); } catch { /* NDJSON or empty */ }
      return { status: res.status, text, json };
    },
  };
  return server;
}

// Polls `fn` until it returns truthy or `ms` pass; returns the last value.
export async function waitFor(fn, ms = 3000, step = 20) {
  const end = Date.now() + ms;
  let v;
  while (!(v = await fn()) && Date.now() < end) await new Promise((r) => setTimeout(r, step));
  return v;
}

// What fake_runner generates for a prompt: its words cycled, n of them.
export function echo(prompt, n) {
  const words = prompt.split(/\s+/).filter(Boolean);
  const count = n ?? words.length;
  return Array.from({ length: count }, (_, i) => words[i % words.length]).join(' ');
}
