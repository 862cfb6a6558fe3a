/**
 * Settings of the loki MCP server (the `mcp.loki` section of bugbot.config.json).
 * The same object configures the Loki client the control plane uses to enrich alerts.
 * Secrets are named by environment variable, never written here.
 */
import { z } from 'zod';
import { envName } from './env-name.ts';

const labelName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a Loki label name ([A-Za-z_][A-Za-z0-9_]*)');

export const lokiSettingsSchema = z
  .object({
    /** Loki base URL (e.g. http://loki:3100); the HTTP backend is used when set. */
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    /** Env var holding a bearer token (Grafana Cloud, a gateway). Give it read-only scope. */
    tokenEnv: envName.optional(),
    basicUserEnv: envName.optional(),
    basicPasswordEnv: envName.optional(),
    /** Sent as X-Scope-OrgID (multi-tenant Loki). */
    tenant: z.string().min(1).optional(),
    /** JSON-lines log files for installs without Loki (used when `url` is unset). */
    files: z.array(z.string().min(1)).default([]),
    /** The label / JSON field naming a user (breadcrumbs). Nested JSON flattens with `_`. */
    userLabel: labelName.default('user_id'),
    /** The label naming a service (alert enrichment). Loki 3 sets `service_name` itself. */
    serviceLabel: labelName.default('service_name'),
    /** Stream selector for queries that name no service (Loki needs one). */
    defaultSelector: z
      .string()
      .regex(/^\{.+\}$/, 'must be a LogQL stream selector such as {service_name=~".+"}')
      .default('{service_name=~".+"}'),
    /** How Loki should parse lines to find `userLabel` in them. */
    parser: z.enum(['json', 'logfmt']).default('json'),
    maxLines: z.number().int().min(1).max(5000).default(200),
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .max(4 * 1024 * 1024)
      .default(64 * 1024),
    maxRangeHours: z
      .number()
      .positive()
      .max(24 * 31)
      .default(24),
    /** Lines read when results are filtered after the query (breadcrumbs by a hashed user id). */
    scanLines: z.number().int().min(1).max(50_000).default(5000),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /** Salt of the one-way user hashes: must be the one intake uses so hashes line up. */
    hashSaltEnv: envName.default('BUGBOT_HASH_SALT'),
    /** Extra redaction patterns; copy `intake.redactPatterns` so both redact alike. */
    redactPatterns: z.array(z.string()).default([]),
  })
  .strict()
  .superRefine((s, ctx) => {
    const url = s.url && URL.canParse(s.url) ? new URL(s.url) : undefined;
    if (url && (url.username || url.password)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'must not hold credentials: name them with basicUserEnv/basicPasswordEnv' });
    }
    if (Boolean(s.basicUserEnv) !== Boolean(s.basicPasswordEnv)) {
      ctx.addIssue({ code: 'custom', path: ['basicPasswordEnv'], message: 'basicUserEnv and basicPasswordEnv go together' });
    }
    if (s.tokenEnv && s.basicUserEnv) {
      ctx.addIssue({ code: 'custom', path: ['tokenEnv'], message: 'use either tokenEnv (bearer) or basic auth, not both' });
    }
    for (const [i, p] of s.redactPatterns.entries()) {
      try {
        new RegExp(p);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['redactPatterns', i], message: `not a valid regular expression: ${(err as Error).message}` });
      }
    }
  })
  .prefault({});
export type LokiSettings = z.output<typeof lokiSettingsSchema>;
