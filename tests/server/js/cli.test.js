// The store subcommands of the `runnel` binary: create (with progress), list, cp, show (with and
// without a server), ps (asks the server), rm, and their errors (exit status 1, one line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { RUNNEL_BIN, FAKE_RUNNER_BIN, startServer, fakeModel, skipReason } from './harness.js';

const skip = await skipReason();
const run = promisify(execFile);

test('create, list, cp, show, ps, rm', { skip: skip ?? false }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runnel-cli-'));
  const env = {
    ...process.env, RUNNEL_MODELS: path.join(dir, 'models'), RUNNEL_RUNNER_BIN: FAKE_RUNNER_BIN,
    RUNNEL_HOST: '127.0.0.1:1',  // no server there
  };
  const runnel = (...args) => run(RUNNEL_BIN, args, { env });
  try {
    const model = fakeModel(dir, 'tiny', 5000);
    const created = await runnel('create', 'tiny', '--from', model);
    assert.match(created.stdout, /created tiny:latest \(gguf/);
    assert.match(created.stderr, /100%/);
    await runnel('cp', 'tiny', 'copy:v2');
    const list = (await runnel('list')).stdout.split('\n');
    assert.match(list[0], /^NAME\s+ID\s+SIZE\s+MODIFIED/);
    assert.match(list[1], /^copy:v2\s+[0-9a-f]{12}\s+4\.9 KiB/);
    assert.match(list[2], /^tiny:latest\s/);
    const show = (await runnel('show', 'tiny')).stdout;  // no server: starts the runner itself
    assert.match(show, /architecture\s+fake/);
    assert.match(show, /context length\s+64/);
    await assert.rejects(runnel('ps'), (e) => e.code === 1 && /no server is running/.test(e.stderr));
    await assert.rejects(runnel('create', '../evil', '--from', model), (e) => e.code === 1 && /invalid model name/.test(e.stderr));
    await assert.rejects(runnel('create', 'q', '--from', model, '--quantize', 'fp8'), (e) => e.code === 1 && /fp8/.test(e.stderr));
    await assert.rejects(runnel('rm', 'missing'), (e) => e.code === 1 && /not found/.test(e.stderr));
    await runnel('rm', 'copy:v2');
    assert.doesNotMatch((await runnel('list')).stdout, /copy/);

    // With a server on the same store: ps and show go through it.
    const server = await startServer({ env: { RUNNEL_MODELS: env.RUNNEL_MODELS } });
    try {
      const host = { ...env, RUNNEL_HOST: server.url.replace('http://', '') };
      assert.equal((await server.post('/api/generate', { model: 'tiny', prompt: 'x', stream: false })).status, 200);
      const ps = (await run(RUNNEL_BIN, ['ps'], { env: host })).stdout;
      assert.match(ps, /^tiny:latest\s/m);
      assert.match((await run(RUNNEL_BIN, ['show', 'tiny'], { env: host })).stdout, /architecture\s+fake/);
      const port = server.url.split(':').at(-1);
      await assert.rejects(run(RUNNEL_BIN, ['serve', '--port', port], { env, timeout: 5000 }),
        (e) => e.code === 1 && /address in use/.test(e.stderr));
    } finally {
      await server.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
