// Uploads a file through tus-js-client (the tus project's JavaScript client, from npm),
// unchanged, in Node: `node tus-node.mjs ENDPOINT TOKEN FILE [KEY=VALUE ...]`. Prints the
// upload's URL. Used by tests/tests/resumable.rs.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import * as tus from 'tus-js-client';

const [endpoint, token, file, ...pairs] = process.argv.slice(2);
const metadata = Object.fromEntries(pairs.map((pair) => pair.split(/=(.*)/s).slice(0, 2)));
const bytes = readFileSync(file);

await new Promise((resolve, reject) => {
  const upload = new tus.Upload(bytes, {
    endpoint,
    headers: { Authorization: `Bearer ${token}` },
    metadata: { filename: basename(file), ...metadata },
    chunkSize: 64 * 1024,
    retryDelays: [0, 500, 1000],
    onError: reject,
    onSuccess: () => {
      console.log(upload.url);
      resolve();
    },
  });
  upload.start();
});
