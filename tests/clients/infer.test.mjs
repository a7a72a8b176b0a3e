// Drives generate, chat and embed on a live ollamax daemon with the real npm
// `ollama` client (ollama-js). Environment: OLLAMAX_URL (daemon under test),
// OLLAMAX_MODEL (a model the daemon holds, created from a tiny random GGUF).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';

const host = process.env.OLLAMAX_URL;
const model = process.env.OLLAMAX_MODEL;
const ollama = new Ollama({ host });
const opts = { num_predict: 8, temperature: 0 };

function norm(v) {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

test('generate, not streamed and streamed', async () => {
  const r = await ollama.generate({ model, prompt: 'Why is the sky blue?', options: opts });
  assert.equal(r.model, model);
  assert.equal(r.done, true);
  assert.equal(r.done_reason, 'length');
  assert.equal(r.eval_count, 8);
  assert.ok(r.prompt_eval_count > 0 && r.total_duration > 0);
  assert.ok(Array.isArray(r.context) && r.context.length === r.prompt_eval_count + 8);
  assert.ok(!Number.isNaN(Date.parse(r.created_at)));

  const parts = [];
  for await (const p of await ollama.generate({ model, prompt: 'Why is the sky blue?', options: opts, stream: true }))
    parts.push(p);
  assert.ok(parts.length >= 2);
  assert.equal(parts.at(-1).done, true);
  assert.ok(parts.slice(0, -1).every((p) => p.done === false));
  assert.equal(parts.map((p) => p.response).join(''), r.response);

  const more = await ollama.generate({ model, prompt: 'and then', context: r.context, options: opts });
  assert.deepEqual(more.context.slice(0, r.context.length), r.context);
});

test('chat, not streamed and streamed', async () => {
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }];
  const r = await ollama.chat({ model, messages, options: opts });
  assert.equal(r.message.role, 'assistant');
  assert.equal(typeof r.message.content, 'string');
  assert.equal(r.done, true);
  assert.equal(r.eval_count, 8);
  let text = '';
  let last;
  for await (const p of await ollama.chat({ model, messages, options: opts, stream: true })) {
    text += p.message.content;
    last = p;
  }
  assert.equal(text, r.message.content);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'length');
});

test('embed and legacy embeddings', async () => {
  const one = await ollama.embed({ model, input: 'hello world' });
  assert.equal(one.embeddings.length, 1);
  assert.ok(Math.abs(norm(one.embeddings[0]) - 1) < 1e-4);
  const two = await ollama.embed({ model, input: ['hello world', 'the cat sat'] });
  assert.equal(two.embeddings.length, 2);
  assert.deepEqual(two.embeddings[0], one.embeddings[0]);
  assert.equal(two.embeddings[0].length, two.embeddings[1].length);
  const legacy = await ollama.embeddings({ model, prompt: 'hello world' });
  assert.equal(legacy.embedding.length, one.embeddings[0].length);
});

test('ps and errors', async () => {
  const ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === model || m.model.startsWith(model)));
  assert.ok(ps.models.every((m) => !Number.isNaN(Date.parse(m.expires_at))));
  await assert.rejects(ollama.generate({ model: 'missing-model', prompt: 'x' }), (e) => {
    assert.equal(e.name, 'ResponseError');
    assert.equal(e.status_code, 404);
    assert.equal(e.error, "model 'missing-model' not found");
    return true;
  });
  await assert.rejects(ollama.chat({ model: 'missing-model', messages: [{ role: 'user', content: 'x' }], stream: true }),
    (e) => e.status_code === 404);
});
