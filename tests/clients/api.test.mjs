// Drives a live ollamax daemon with the real npm `ollama` client (ollama-js).
// Environment: OLLAMAX_URL (daemon under test), OLLAMAX_PEER (host:port of a
// second daemon that holds the model "peermodel:v1"), OLLAMAX_GGUF (a model file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ollama } from 'ollama';

const host = process.env.OLLAMAX_URL;
const peer = process.env.OLLAMAX_PEER;
const gguf = process.env.OLLAMAX_GGUF;
const ollama = new Ollama({ host });

async function uploadBlob(data) {
  const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
  const res = await fetch(`${host}/api/blobs/${digest}`, { method: 'POST', body: data });
  assert.ok(res.status === 201 || res.status === 200, `upload status ${res.status}`);
  return digest;
}

test('version and empty lists', async () => {
  // this ollama-js has no version(): ask the endpoint directly
  const v = await (await fetch(`${host}/api/version`)).json();
  assert.match(v.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual((await ollama.ps()).models, []);
});

test('create (streamed and not), list, show, copy, delete', async () => {
  const digest = await uploadBlob(readFileSync(gguf));
  const statuses = [];
  const stream = await ollama.create({ model: 'jsmodel', files: { 'model.gguf': digest },
    template: '{{ .Prompt }}', system: 'you are terse', parameters: { temperature: 0.3 }, stream: true });
  for await (const part of stream) statuses.push(part.status);
  assert.equal(statuses[0], 'parsing GGUF');
  assert.equal(statuses.at(-1), 'success');

  const res = await ollama.create({ model: 'jsmodel2', from: 'jsmodel', system: 'other' });
  assert.equal(res.status, 'success');

  const list = await ollama.list();
  const names = list.models.map((m) => m.name).sort();
  assert.deepEqual(names, ['jsmodel2:latest', 'jsmodel:latest']);
  for (const m of list.models) {
    assert.equal(m.details.format, 'gguf');
    assert.equal(m.digest.length, 64);
    assert.ok(m.size > 0);
    assert.ok(!Number.isNaN(Date.parse(m.modified_at)));
  }

  const show = await ollama.show({ model: 'jsmodel' });
  assert.equal(show.system, 'you are terse');
  assert.equal(show.template, '{{ .Prompt }}');
  assert.match(show.parameters, /temperature\s+0\.3/);
  assert.equal(show.details.family, 'llama');
  assert.equal(show.model_info['general.architecture'], 'llama');
  assert.ok(show.capabilities.includes('completion'));

  assert.deepEqual(await ollama.copy({ source: 'jsmodel', destination: 'jscopy:x' }), { status: 'success' });
  assert.deepEqual(await ollama.delete({ model: 'jscopy:x' }), { status: 'success' });
  assert.deepEqual(await ollama.delete({ model: 'jsmodel2' }), { status: 'success' });
  assert.deepEqual((await ollama.list()).models.map((m) => m.name), ['jsmodel:latest']);
});

test('errors surface as ResponseError with the server message', async () => {
  await assert.rejects(ollama.show({ model: 'missing-model' }), (e) => {
    assert.equal(e.name, 'ResponseError');
    assert.equal(e.status_code, 404);
    assert.match(e.error, /not found/);
    return true;
  });
  await assert.rejects(ollama.show({ model: 'bad name!' }), (e) => e.status_code === 400 && /invalid model name/.test(e.error));
  await assert.rejects(ollama.delete({ model: 'missing-model' }), (e) => e.status_code === 404);
  await assert.rejects(ollama.copy({ source: 'missing-model', destination: 'x' }), (e) => e.status_code === 404);
  await assert.rejects(ollama.create({ model: 'broken', files: { 'a.gguf': 'sha256:' + '0'.repeat(64) } }),
    (e) => e.status_code >= 400 && e.status_code < 500);
  // digest mismatch on blob upload
  const res = await fetch(`${host}/api/blobs/sha256:${'0'.repeat(64)}`, { method: 'POST', body: 'abc' });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error, /^digest mismatch/);
});

test('pull from a peer registry, streamed progress and not', async () => {
  const name = `${peer}/library/peermodel:v1`;
  const stream = await ollama.pull({ model: name, insecure: true, stream: true });
  const parts = [];
  for await (const p of stream) parts.push(p);
  assert.equal(parts[0].status, 'pulling manifest');
  assert.equal(parts.at(-1).status, 'success');
  const layers = parts.filter((p) => p.digest);
  assert.ok(layers.length >= 2);
  for (const p of layers) {
    assert.equal(p.status, 'pulling ' + p.digest.slice(7, 19));
    assert.ok(p.total > 0);
  }
  const again = await ollama.pull({ model: name, insecure: true });
  assert.equal(again.status, 'success');
  await assert.rejects(ollama.pull({ model: `${peer}/library/nothing:here`, insecure: true }),
    (e) => /file does not exist/.test(e.error ?? e.message));
  const listed = (await ollama.list()).models.map((m) => m.name);
  assert.ok(listed.includes(`${peer}/library/peermodel:v1`), listed.join(','));
});
