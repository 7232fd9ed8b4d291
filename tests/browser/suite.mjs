// The whole browser suite in one Node process, so that one Chromium (support.mjs) serves every
// test and the tests run one after another in this order, as they share the platform's users:
// the journey first, as it expects its user to own nothing else; layout after the uploads, so
// that its accessibility check sees the conversions list with every kind of row they leave;
// within each file, the file's order. tests/tests/browser.rs runs `node --test suite.mjs`.
// Each file also runs on its own (`node --test upload.test.mjs`).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';

const FILES = [
  'journey.test.mjs',
  'conversions.test.mjs',
  'users.test.mjs',
  'upload.test.mjs',
  'form.test.mjs',
  'layout.test.mjs',
  'account.test.mjs',
];

// A test file left out of the list would silently never run.
const present = readdirSync(new URL('.', import.meta.url)).filter((name) => name.endsWith('.test.mjs')).sort();
assert.deepEqual(present, [...FILES].sort(), 'suite.mjs must list every *.test.mjs in tests/browser');

for (const file of FILES) await import(`./${file}`);
