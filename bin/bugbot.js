#!/usr/bin/env node
// The `bugbot` command. Sources are TypeScript run through tsx's loader, so a
// checkout works right after `npm ci` with no build step.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// bugbot's own tsconfig (JSX for the dashboard), wherever it is started from: tsx would
// otherwise look for one from the working directory up, e.g. in the repository being fixed.
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { main } = await import('../control/cli.ts');
await main(process.argv);
