// The email parser thread's entry (see email-parse.ts), in plain JavaScript as
// control/writer-entry.mjs: the prebuilt bundle while it is fresh (lib/bundle.ts), else
// the TypeScript sources through tsx with bugbot's own tsconfig.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freshBundle } from '../../lib/bundle-fresh.mjs';

const bundle = process.env.BUGBOT_NO_BUNDLE ? null : freshBundle('email-parser');
if (bundle) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)) });
  await import('./email-parse-thread.ts');
}
