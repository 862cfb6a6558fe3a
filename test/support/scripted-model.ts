/**
 * A scripted model: a local HTTP server speaking the Anthropic Messages API
 * (`POST /v1/messages`, streamed SSE or plain JSON, and the `HEAD /` probe) so
 * tests drive the REAL Claude Code CLI. Only the model's replies are scripted;
 * tool execution, MCP servers, hooks and git are real.
 *
 * A session is recognised by a marker in its first user message, e.g.
 * `<!-- bugbot-phase: research -->` (the harness puts one in every phase prompt).
 * The reply to a request is step N of that phase's script, where N is the number
 * of assistant turns already in the conversation, so a retried request gets the
 * same reply. Requests with no marker (the CLI's own side calls) get a short text.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface MessagesRequest {
  model: string;
  system?: string | Array<{ type: string; text: string }>;
  messages: Array<{ role: 'user' | 'assistant'; content: string | Array<Record<string, unknown>> }>;
  tools?: Array<{ name: string; input_schema?: unknown }>;
  stream?: boolean;
  max_tokens?: number;
  output_format?: unknown;
  [k: string]: unknown;
}

export type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string };

/** One scripted reply. */
export type Step =
  | { blocks: Block[]; usage?: { input_tokens: number; output_tokens: number } }
  /** Never answer (the CLI waits; the harness's idle kill must act). */
  | { stall: true }
  /** Answer `then` after a pause (a slow model; keeps a session busy). */
  | { delayMs: number; then: Step }
  /** Answer `then` once `until()` holds (polled every 100 ms; after `timeoutMs`, 60 s by default, answer anyway). */
  | { until: () => boolean; timeoutMs?: number; then: Step }
  /** Answer with an HTTP error (overloaded = 529, server error = 500...). */
  | { status: number; body?: unknown }
  /** Decide from the request (e.g. read a tool result). */
  | ((req: MessagesRequest, ctx: StepContext) => Step);

export interface StepContext {
  phase: string;
  turn: number;
  /** The last tool_result blocks the CLI sent back. */
  toolResults: Array<{ tool_use_id: string; content: unknown; is_error?: boolean }>;
}

export const tool = (name: string, input: Record<string, unknown>, text?: string): Step => ({
  blocks: [...(text ? [{ type: 'text' as const, text }] : []), { type: 'tool_use' as const, name, input }],
});
export const say = (text: string): Step => ({ blocks: [{ type: 'text', text }] });

export interface ScriptedModel {
  url: string;
  /** Set (or replace) the script of a phase. */
  script(phase: string, steps: Step[]): void;
  /** Every request received, in order, with its phase ('' when unmarked). */
  requests: Array<{ phase: string; turn: number; body: MessagesRequest; headers: IncomingMessage['headers']; at: number; repliedAt?: number }>;
  close(): Promise<void>;
}

const PHASE_MARKER = /<!--\s*bugbot-phase:\s*([\w-]+)\s*-->/;

function textOf(content: MessagesRequest['messages'][number]['content']): string {
  if (typeof content === 'string') return content;
  return content.map((b) => (typeof b.text === 'string' ? b.text : '')).join('\n');
}

export function phaseOf(body: MessagesRequest): string {
  const first = body.messages.find((m) => m.role === 'user');
  const sys = typeof body.system === 'string' ? body.system : (body.system ?? []).map((s) => s.text).join('\n');
  const m = PHASE_MARKER.exec(first ? textOf(first.content) : '') ?? PHASE_MARKER.exec(sys);
  return m ? m[1]! : '';
}

export async function startScriptedModel(opts: { defaultText?: string } = {}): Promise<ScriptedModel> {
  const scripts = new Map<string, Step[]>();
  const requests: ScriptedModel['requests'] = [];
  const stalled = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  let ids = 0;

  const server: Server = createServer((req, res) => {
    if (req.method === 'HEAD' || req.method === 'GET') {
      res.writeHead(200).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: MessagesRequest;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as MessagesRequest;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'bad json' } }));
        return;
      }
      if (!req.url?.startsWith('/v1/messages')) {
        res.writeHead(404).end();
        return;
      }
      if (req.url.startsWith('/v1/messages/count_tokens')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ input_tokens: 100 }));
        return;
      }
      const phase = phaseOf(body);
      const turn = body.messages.filter((m) => m.role === 'assistant').length;
      const record: ScriptedModel['requests'][number] = { phase, turn, body, headers: req.headers, at: Date.now() };
      requests.push(record);
      res.on('finish', () => (record.repliedAt = Date.now()));
      const last = body.messages[body.messages.length - 1];
      const toolResults =
        last && Array.isArray(last.content)
          ? (last.content.filter((b) => b.type === 'tool_result') as StepContext['toolResults'])
          : [];
      let step: Step | undefined = phase ? scripts.get(phase)?.[turn] : undefined;
      if (!phase || !scripts.has(phase)) step = say(opts.defaultText ?? 'OK');
      else if (!step) step = say('Done.');
      let delay = 0;
      const conditions: Array<{ until: () => boolean; timeoutMs?: number }> = [];
      for (;;) {
        if (typeof step === 'function') step = step(body, { phase, turn, toolResults });
        else if ('delayMs' in step) {
          delay += step.delayMs;
          step = step.then;
        } else if ('until' in step) {
          conditions.push(step);
          step = step.then;
        } else break;
      }
      const final = step;
      const started = Date.now();
      const ready = () => conditions.every((c) => Date.now() - started >= (c.timeoutMs ?? 60_000) || c.until());
      const later = (ms: number) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (ready()) reply(final, body, turn);
          else later(100);
        }, ms);
        timers.add(timer);
      };
      if (delay || !ready()) later(delay);
      else reply(final, body, turn);
    });

    function reply(step: Exclude<Step, ((...a: never[]) => Step) | { delayMs: number; then: Step } | { until: () => boolean; then: Step }>, body: MessagesRequest, turn: number): void {
      if (res.destroyed) return;
      if ('stall' in step) {
        stalled.add(res);
        res.on('close', () => stalled.delete(res));
        return;
      }
      if ('status' in step) {
        res
          .writeHead(step.status, { 'content-type': 'application/json' })
          .end(JSON.stringify(step.body ?? { type: 'error', error: { type: step.status === 529 ? 'overloaded_error' : 'api_error', message: `scripted ${step.status}` } }));
        return;
      }
      const usage = step.usage ?? { input_tokens: 1200 + 40 * turn, output_tokens: 80 };
      const content = step.blocks.map((b) => (b.type === 'tool_use' ? { ...b, id: b.id ?? `toolu_${++ids}` } : b));
      const message = {
        id: `msg_${++ids}`,
        type: 'message',
        role: 'assistant',
        model: body.model,
        content,
        stop_reason: content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn',
        stop_sequence: null,
        usage,
      };
      if (body.stream) writeStream(res, message);
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(message));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    requests,
    script: (phase, steps) => void scripts.set(phase, steps),
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of stalled) r.destroy();
        for (const timer of timers) clearTimeout(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type Message = { id: string; model: string; content: Array<Record<string, unknown>>; stop_reason: string; usage: { input_tokens: number; output_tokens: number } };

/** The Messages API's SSE event sequence for one complete message. */
function writeStream(res: ServerResponse, m: Message): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  send('message_start', {
    type: 'message_start',
    message: { ...m, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: m.usage.input_tokens, output_tokens: 1 } },
  });
  m.content.forEach((b, index) => {
    if (b.type === 'tool_use') {
      send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } });
      send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(b.input) } });
    } else {
      send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: b.text } });
    }
    send('content_block_stop', { type: 'content_block_stop', index });
  });
  send('message_delta', { type: 'message_delta', delta: { stop_reason: m.stop_reason, stop_sequence: null }, usage: { output_tokens: m.usage.output_tokens } });
  send('message_stop', { type: 'message_stop' });
  res.end();
}
