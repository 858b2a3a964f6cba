import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { ERROR_CODES } from '../src/errors.js';

const ERRORS_DOC = new URL('../../docs/errors.md', import.meta.url);

test('docs/errors.md documents exactly the error codes of src/errors.ts', async () => {
  const text = await fs.readFile(ERRORS_DOC, 'utf8');
  const documented = new Set([...text.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1] as string));
  const defined = new Set(Object.keys(ERROR_CODES));
  const missing = [...defined].filter((code) => !documented.has(code));
  const extra = [...documented].filter((code) => !defined.has(code));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, 'codes missing from or extra in docs/errors.md');
});

test('every error code is thrown somewhere in src', async () => {
  const sources = await fs.readdir(new URL('../../src/', import.meta.url), { recursive: true });
  let text = '';
  for (const file of sources.filter((name) => String(name).endsWith('.ts') && !String(name).endsWith('errors.ts'))) {
    text += await fs.readFile(new URL(`../../src/${String(file)}`, import.meta.url), 'utf8');
  }
  const unused = Object.keys(ERROR_CODES).filter((code) => !text.includes(`'${code}'`));
  assert.deepEqual(unused, [], 'codes listed in ERROR_CODES but never used');
});
