// The official openai npm SDK's own retries against the faultline fake LLM, for the retries.*
// checks: the Node twin of tests/python/retry_policies.py.
//
// Usage: node retry_policies.mjs BASE_URL CONTROL_URL API_KEY
//
// For each case it switches one fault on through the control API, makes its calls at once with
// the default client (default retry settings), and prints one JSON line,
// {"case": NAME, "keys": [nonce, ...]}: tests/retry_policies_sdk.rs reads the fake's journal for
// those nonces and judges the real waits with the real checks.

import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';

const [base, control, apiKey] = process.argv.slice(2);

async function call(method, path, body) {
  const response = await fetch(control + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`);
}

const client = new OpenAI({ baseURL: `${base}/v1`, apiKey });

async function ask(key) {
  await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: `What plans do you offer? ${key}` }],
  });
}

async function runCase(name, rule, calls) {
  await call('DELETE', '/faults');
  await call('POST', '/faults/llm', rule);
  // A correlation key the fake finds in the prompt: `fl-` and 8 hex digits.
  const keys = Array.from({ length: calls }, () => `fl-${randomBytes(4).toString('hex')}`);
  const errors = [];
  await Promise.all(keys.map((key) => ask(key).catch((e) => errors.push(e.constructor.name))));
  await call('DELETE', '/faults');
  console.log(JSON.stringify({ case: name, keys, errors }));
}

await runCase('fail-twice', { kind: 'status', code: 503, first_attempts: 2 }, 8);
await runCase('rate-limited', { kind: 'status', code: 429, retry_after: '1s', first_attempts: 1 }, 3);
await runCase('rejected', { kind: 'status', code: 400, first_attempts: 1 }, 2);
