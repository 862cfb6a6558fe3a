/**
 * What the dashboard and the API show of text that came from an agent, a log or bugbot's
 * own records: `createScrub` redacts it (the redactor's rules), then masks every secret
 * value the config resolved wherever it appears; `{ secretsOnly: true }` only masks (for
 * bugbot's own text, which the rules would mangle, and for exports kept verbatim).
 */
import { configuredRedactor, secretNames, type BugbotConfig } from './config.ts';
import { literalMask } from '../lib/redact.ts';

export type Scrub = (text: string) => string;

/** Redact, then mask the config's secret values; `secretsOnly` keeps data verbatim otherwise (exports). */
export function createScrub(config: BugbotConfig, opts: { secretsOnly?: boolean } = {}): Scrub {
  const redactor = opts.secretsOnly ? null : configuredRedactor(config);
  // Every secret value of 4 characters or more, user names included: shorter ones than
  // intake masks, since a page shows what the agent wrote too.
  const mask = literalMask(secretNames(config).map((n) => config.secrets.get(n)).filter((v): v is string => Boolean(v && v.length >= 4)));
  return (text) => mask(redactor ? redactor.text(text) : text);
}
