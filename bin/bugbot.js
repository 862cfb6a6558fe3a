#!/usr/bin/env node
// The `bugbot` command. Sources are TypeScript run through tsx's loader, so a
// checkout works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../control/cli.ts');
await main(process.argv);
