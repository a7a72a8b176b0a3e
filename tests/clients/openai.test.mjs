// Drives the OpenAI-compatible endpoints of a live ollamax daemon with the
// real npm `openai` client. Environment: OLLAMAX_URL, OLLAMAX_MODEL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const host = process.env.OLLAMAX_URL;
const model = process.env.OLLAMAX_MODEL;
const client = new OpenAI({ baseURL: `${host}/v1`, apiKey: 'ollama', maxRetries: 0 });

test('chat completions, not streamed and streamed', async () => {
  const messages = [{ role: 'user', content: 'Say hello' }];
  const r = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, model);
  assert.equal(r.system_fingerprint, 'fp_ollama');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 6);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 6);

  const stream = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0,
    stream: true, stream_options: { include_usage: true } });
  let text = '';
  const chunks = [];
  for await (const c of stream) {
    chunks.push(c);
    if (c.choices.length) text += c.choices[0].delta.content ?? '';
  }
  assert.equal(text, r.choices[0].message.content);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks[0].object, 'chat.completion.chunk');
  const fin = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
  assert.equal(fin.length, 1);
  assert.equal(fin[0].choices[0].finish_reason, 'length');
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage.completion_tokens, 6);
});

test('completions', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  let text = '';
  for await (const c of await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5,
    temperature: 0, stream: true }))
    text += c.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

test('models list and retrieve', async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.ok(ids.includes(`${model}:latest`), ids.join(','));
  for (const m of list.data) {
    assert.equal(m.object, 'model');
    assert.ok(m.created > 0);
    assert.equal(typeof m.owned_by, 'string');
  }
  const one = await client.models.retrieve(`${model}:latest`);
  assert.equal(one.id, `${model}:latest`);
  await assert.rejects(client.models.retrieve('missing-model'), (e) => e.status === 404);
});

test('embeddings (float and the default base64)', async () => {
  const f = await client.embeddings.create({ model, input: ['hello world', 'the cat'], encoding_format: 'float' });
  assert.equal(f.object, 'list');
  assert.equal(f.data.length, 2);
  assert.equal(f.data[1].index, 1);
  const v = f.data[0].embedding;
  assert.ok(Math.abs(Math.sqrt(v.reduce((s, x) => s + x * x, 0)) - 1) < 1e-4);
  const b = await client.embeddings.create({ model, input: 'hello world' });
  assert.equal(b.data[0].embedding.length, v.length);
  b.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - v[i]) < 1e-6));
  assert.ok(f.usage.prompt_tokens > 0);
});

test('errors in the OpenAI shape', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'missing-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.error.type, 'not_found_error');
      assert.match(e.message, /not found/);
      return true;
    });
  await assert.rejects(client.chat.completions.create({ model, messages: [] }), (e) => e.status === 400);
});
