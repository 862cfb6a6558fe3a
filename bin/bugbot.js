#!/usr/bin/env node
// The `bugbot` command. Sources are TypeScript run through tsx's loader, so a
// checkout works right after `npm ci` with no build step. `bugbot start` also builds a
// JavaScript bundle of the CLI (lib/bundle.ts); while its sources are unchanged, it is
// used instead: a command then starts in a third of the time (phase 0 runs one per ticket).
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freshBundle } from '../lib/bundle-fresh.mjs';

const bundle = process.env.BUGBOT_NO_BUNDLE ? null : freshBundle('cli');
let main;
if (bundle) {
  ({ main } = await import(pathToFileURL(bundle).href));
} else {
  const { register } = await import('tsx/esm/api');
  // bugbot's own tsconfig (JSX for the dashboard), wherever it is started from: tsx would
  // otherwise look for one from the working directory up, e.g. in the repository being fixed.
  register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
  ({ main } = await import('../control/cli.ts'));
}
await main(process.argv);
