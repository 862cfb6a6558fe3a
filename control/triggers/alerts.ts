/**
 * Parsing of alert webhooks: Grafana unified alerting (payload version "1") and
 * Prometheus Alertmanager (version "4") share one alert shape. One event per
 * alert; resolved alerts become `status: 'resolved'` events recorded against their
 * fingerprint. A partly bad batch yields the good alerts plus a list of problems.
 */
import { createHash } from 'node:crypto';
import { compilePattern, type BugbotConfig } from '../config.ts';
import { badRequest } from '../http-error.ts';
import type { EventKind, TriggerEvent, TriggerSource } from '../types.ts';

interface Alert {
  status?: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  fingerprint?: string;
  values?: Record<string, number | null> | null;
}

// Hand-written validation: this is the hottest path of the control plane (alert
// storms), and a schema library costs more per alert than everything else we do.
// Messages name the field, as zod's would.

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown, at: string): Record<string, string> {
  if (!isObject(v)) throw new Error(`${at}: expected an object of strings`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new Error(`${at}.${k}: expected a string, got ${x === null ? 'null' : typeof x}`);
  }
  return v as Record<string, string>;
}

function optionalString(v: unknown, at: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${at}: expected a string`);
  return v;
}

function toAlert(raw: unknown, at: string): Alert {
  if (!isObject(raw)) throw new Error(`${at}: expected an object`);
  const status = raw.status;
  if (status !== undefined && status !== 'firing' && status !== 'resolved') {
    throw new Error(`${at}.status: expected "firing" or "resolved"`);
  }
  let values: Alert['values'];
  if (raw.values !== undefined && raw.values !== null) {
    if (!isObject(raw.values)) throw new Error(`${at}.values: expected an object of numbers`);
    for (const [k, x] of Object.entries(raw.values)) {
      if (x !== null && typeof x !== 'number') throw new Error(`${at}.values.${k}: expected a number`);
    }
    values = raw.values as Record<string, number | null>;
  }
  return {
    status,
    labels: stringMap(raw.labels, `${at}.labels`),
    annotations: raw.annotations === undefined || raw.annotations === null ? {} : stringMap(raw.annotations, `${at}.annotations`),
    startsAt: optionalString(raw.startsAt, `${at}.startsAt`),
    endsAt: optionalString(raw.endsAt, `${at}.endsAt`),
    fingerprint: optionalString(raw.fingerprint, `${at}.fingerprint`),
    values,
  };
}

export interface AlertParseOptions {
  /** Every alert is a latency alert (the /triggers/latency endpoint). */
  forceLatency?: boolean;
  /** Alerts whose name matches are latency alerts. */
  latencyPattern: RegExp;
  defaultThresholdMs: number;
  now: () => Date;
}

/** The parse options the alert endpoints use, from the configuration (`latency`: /triggers/latency). */
export function alertParseOptions(config: BugbotConfig, now: () => Date, latency = false): AlertParseOptions {
  const cfg = config.triggers.latency;
  return { forceLatency: latency, latencyPattern: compilePattern(cfg.alertNamePattern), defaultThresholdMs: cfg.defaultThresholdMs, now };
}

export interface AlertParseResult {
  source: TriggerSource;
  events: TriggerEvent[];
  rejected: Array<{ index: number; problem: string }>;
  /** Alerts taken and set aside, with why: Grafana's test notifications. */
  ignored: Array<{ index: number; reason: string }>;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * A sender's value as an error message shows it: cut short, and never a throw (a value
 * nested too deep for JSON.stringify would turn a 400 into a 500).
 */
function brief(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? '[...]' : '{...}';
  }
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
const GRAFANA_TEST = "a Grafana test notification (a contact point's Test button): nothing to fix, nothing stored";

export function parseAlertWebhook(body: unknown, opts: AlertParseOptions): AlertParseResult {
  if (!isObject(body)) throw badRequest('invalid alert webhook: body: expected a JSON object');
  const version = body.version;
  if (version === undefined || version === null) {
    throw badRequest('invalid alert webhook: version: required ("1" for Grafana, "4" for Alertmanager)');
  }
  if (typeof version !== 'string') {
    throw badRequest(`invalid alert webhook: version: expected a string ("1" for Grafana, "4" for Alertmanager), got ${typeof version} ${brief(version)}`);
  }
  if (version !== '1' && version !== '4') {
    throw badRequest(`invalid alert webhook: version ${brief(version)} is not supported ("1" = Grafana, "4" = Alertmanager)`);
  }
  if (!Array.isArray(body.alerts)) throw badRequest('invalid alert webhook: alerts: expected an array');
  const groupStatus = body.status;
  if (groupStatus !== undefined && groupStatus !== 'firing' && groupStatus !== 'resolved') {
    throw badRequest('invalid alert webhook: status: expected "firing" or "resolved"');
  }
  const source: TriggerSource = version === '1' ? 'grafana' : 'alertmanager';
  const events: TriggerEvent[] = [];
  const rejected: AlertParseResult['rejected'] = [];
  const ignored: AlertParseResult['ignored'] = [];
  body.alerts.forEach((raw: unknown, index: number) => {
    try {
      const alert = toAlert(raw, `alerts[${index}]`);
      // Grafana's test notification: a contact point's Test button sends the alert
      // {alertname="TestAlert", instance="Grafana"} stamped now (older builds and
      // grafana/alerting's own tests: the zero time, which a real alert never has). Taken
      // as an alert, every click would be a new occurrence of a "Notification test" ticket.
      if (source === 'grafana' && ((alert.labels.alertname === 'TestAlert' && alert.labels.instance === 'Grafana') || alert.startsAt === ZERO_TIME)) {
        ignored.push({ index, reason: GRAFANA_TEST });
      }
      else events.push(alertToEvent(alert, `alerts[${index}]`, source, groupStatus, opts));
    } catch (err) {
      rejected.push({ index, problem: (err as Error).message });
    }
  });
  if (events.length === 0 && ignored.length === 0 && body.alerts.length > 0) {
    throw badRequest(`invalid alert webhook: no valid alerts (${rejected.map((r) => r.problem).join('; ')})`, rejected);
  }
  return { source, events, rejected, ignored };
}

function pick(map: Record<string, string> | undefined, keys: string[]): string | undefined {
  if (!map) return undefined;
  for (const k of keys) {
    const v = map[k];
    if (v && v.trim()) return v.trim();
  }
  return undefined;
}

function alertToEvent(a: Alert, at: string, source: TriggerSource, groupStatus: string | undefined, opts: AlertParseOptions): TriggerEvent {
  const labels = a.labels;
  const ann = a.annotations;
  const status = a.status ?? (groupStatus === 'resolved' ? 'resolved' : 'firing');
  const alertname = labels.alertname ?? labels.__alert_rule_title__ ?? 'alert';
  const kind: EventKind =
    opts.forceLatency || labels.kind === 'latency' || opts.latencyPattern.test(alertname) ? 'latency' : 'error';

  const service = pick(labels, ['service', 'service_name', 'app', 'application', 'job', 'container']);
  const message = pick(ann, ['message', 'error', 'exception', 'description', 'summary']) ?? alertname;
  const title = pick(ann, ['summary', 'title']) ?? alertname;
  const stack = pick(ann, ['stack', 'stacktrace', 'stack_trace', 'traceback']);
  const method = pick(labels, ['method', 'http_method']) ?? pick(ann, ['method']);
  const path = pick(labels, ['route', 'path', 'handler', 'endpoint', 'uri', 'url']) ?? pick(ann, ['route', 'path', 'url']);
  const route = path ? (method && !/^[A-Z]+\s/.test(path) ? `${method.toUpperCase()} ${path}` : path) : undefined;

  // startsAt is half of the alert's idempotency key: a time that cannot be read would
  // make every retry of it a new event, so the alert is refused rather than given "now".
  const startsAt = a.startsAt && a.startsAt !== ZERO_TIME ? rfc3339(a.startsAt, `${at}.startsAt`) : opts.now().toISOString();
  const endsAt = a.endsAt && a.endsAt !== ZERO_TIME ? rfc3339(a.endsAt, `${at}.endsAt`) : undefined;
  // An empty fingerprint is no fingerprint: shared by every such alert, it would make
  // different alerts in one delivery duplicates of the first. The key is stored and echoed
  // as it is (never redacted): only Grafana's and Alertmanager's own form (16 hex digits)
  // is kept as sent, anything else a sender put there (label text, a token) is hashed.
  const given = a.fingerprint?.trim();
  const fp = given && ALERT_FINGERPRINT.test(given) ? given : shortHash(given ? ['fingerprint', given] : Object.entries(labels).sort());

  const ev: TriggerEvent = {
    source,
    kind,
    // Never end on half of a surrogate pair (an emoji cut at the limit).
    title: title.split('\n')[0]!.slice(0, 300).replace(/[\ud800-\udbff]$/, ''),
    message,
    labels: { ...labels, ...prefixed(ann, 'annotation_', ['message', 'description', 'summary', 'stack', 'stacktrace', 'stack_trace']) },
    count: countOf(a),
    firstSeen: startsAt,
    lastSeen: status === 'resolved' && endsAt ? endsAt : opts.now().toISOString(),
    human: false,
    sourceEventId: `${fp}:${startsAt}${status === 'resolved' ? ':resolved' : ''}`,
    status,
  };
  if (service) ev.service = service;
  if (stack) ev.stack = stack;
  if (route) ev.route = route;
  if (kind === 'latency') {
    const latency = latencyOf(a, opts.defaultThresholdMs, status === 'firing');
    ev.latency = { p95Ms: latency.p95Ms, thresholdMs: latency.thresholdMs };
    // The brief shows the figures from these labels (the small JSON body's names): only
    // when the unit is known, never a guess shown as fact.
    if (latency.unitKnown && latency.p95Ms > 0) {
      ev.labels.p95_ms ??= String(Math.round(ev.latency.p95Ms * 10) / 10);
      ev.labels.threshold_ms ??= String(ev.latency.thresholdMs);
    }
  }
  return ev;
}

const ALERT_FINGERPRINT = /^[0-9a-f]{16}$/i;

function shortHash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);
}

function prefixed(map: Record<string, string>, prefix: string, skip: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) if (!skip.includes(k)) out[prefix + k] = v;
  return out;
}

/**
 * Occurrences this alert stands for: a `count` value (Grafana `values`) or
 * annotation when the rule provides one, else 1.
 */
function countOf(a: Alert): number {
  const fromValues = a.values?.count;
  const fromAnn = a.annotations.count !== undefined ? Number(a.annotations.count) : undefined;
  const n = fromValues ?? fromAnn;
  return n !== undefined && n !== null && Number.isFinite(n) && n >= 1 ? Math.min(1e9, Math.round(n)) : 1;
}

/**
 * The P95 and the threshold in milliseconds, and whether the P95's unit is known. A
 * `p95_ms` value or annotation is milliseconds. A bare value (`p95`, the query's `A`, a
 * `value` annotation) is in the unit a `unit` annotation or label names (`s`, `seconds`,
 * `ms`, `milliseconds`, ...); without one, only a firing alert whose own rule gives its
 * threshold (`threshold_ms`) tells: a value at or over it is milliseconds (a firing
 * alert's P95 is over its threshold), one far under it (under a tenth) that reaches it as
 * seconds, and stays within a day as such, is seconds (Prometheus measures in seconds).
 * Otherwise the unit is unknown: 450 under a 500 ms threshold may be 450 ms just under it
 * (the rule's own query may differ) as well as 450 s, and a guess would be shown as fact.
 */
function latencyOf(a: Alert, defaultThresholdMs: number, firing: boolean): { p95Ms: number; thresholdMs: number; unitKnown: boolean } {
  const num = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : Number(v));
  const given = num(a.annotations.threshold_ms) ?? num(a.labels.threshold_ms);
  const ruleThreshold = given !== undefined && Number.isFinite(given) && given > 0 ? given : undefined;
  const thresholdMs = ruleThreshold ?? defaultThresholdMs;
  const ms = num(a.values?.p95_ms) ?? num(a.annotations.p95_ms);
  if (ms !== undefined) return { p95Ms: Number.isFinite(ms) && ms >= 0 ? ms : 0, thresholdMs, unitKnown: Number.isFinite(ms) && ms >= 0 };
  const raw = num(a.values?.p95) ?? num(a.values?.A) ?? num(a.annotations.value);
  if (raw === undefined || !Number.isFinite(raw) || raw < 0) return { p95Ms: 0, thresholdMs, unitKnown: false };
  const unit = (a.annotations.unit ?? a.labels.unit ?? '').trim().toLowerCase();
  if (SECONDS.has(unit)) return { p95Ms: raw * 1000, thresholdMs, unitKnown: true };
  if (MILLISECONDS.has(unit)) return { p95Ms: raw, thresholdMs, unitKnown: true };
  if (!unit && firing && ruleThreshold !== undefined) {
    if (raw >= ruleThreshold) return { p95Ms: raw, thresholdMs, unitKnown: true };
    const seconds = raw < ruleThreshold / 10 && raw * 1000 >= ruleThreshold && raw * 1000 <= DAY_MS;
    if (seconds) return { p95Ms: raw * 1000, thresholdMs, unitKnown: true };
  }
  return { p95Ms: raw, thresholdMs, unitKnown: false };
}

const DAY_MS = 86_400_000;
const SECONDS = new Set(['s', 'sec', 'secs', 'second', 'seconds']);
const MILLISECONDS = new Set(['ms', 'msec', 'msecs', 'millisecond', 'milliseconds']);

/** Grafana and Alertmanager send RFC 3339 times ("2026-11-21T10:00:00.123456789Z", "…+01:00"). */
const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function rfc3339(s: string, field: string): string {
  const m = RFC3339.exec(s.trim());
  // Date.parse takes at most milliseconds; Go writes nanoseconds.
  const t = m ? Date.parse(`${m[1]}T${m[2]}${m[3] ? m[3].slice(0, 4) : ''}${m[4]!.toUpperCase()}`) : NaN;
  if (!Number.isFinite(t)) throw new Error(`${field}: expected an RFC 3339 time such as "2026-11-21T10:00:00Z", got ${JSON.stringify(s.slice(0, 60))}`);
  return new Date(t).toISOString();
}
