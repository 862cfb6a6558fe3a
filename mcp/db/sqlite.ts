/**
 * SQLite backend for small installs. The file is opened read-only with
 * `PRAGMA query_only` (read-write only under --allow-writes) in a child process
 * (sqlite-worker.ts): better-sqlite3 has no way to interrupt a running statement, so
 * the statement timeout is enforced by SIGKILL of that child, and the next query
 * starts a fresh one. Queries are checked by the same PostgreSQL-syntax guard and
 * rebuilt from PostgreSQL's tokens before SQLite sees them (sqlite-sql.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ToolError } from '../shared/tool.ts';
import { CutCell, timeoutMessage, type DbBackend, type Limits, type Param, type QueryResult } from './backend.ts';
import type { GuardedSql } from './guard.ts';
import { toSqlite } from './sqlite-sql.ts';
import type { WorkerCut, WorkerJob, WorkerReply } from './sqlite-worker.ts';

const workerPath = fileURLToPath(new URL('./sqlite-worker.ts', import.meta.url));
// The worker is TypeScript too: load tsx by absolute URL so any working directory works.
const tsxLoader = import.meta.resolve('tsx');

/** SQLite through a killable worker process. */
export class SqliteBackend implements DbBackend {
  private child?: { proc: ChildProcess; ready: Promise<void> };
  private nextId = 0;
  // One statement at a time: the child is single-threaded, and a timeout kills it.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly writable: boolean,
    private readonly limits: Limits,
    private readonly log: (msg: string) => void,
  ) {}

  private spawn(): { proc: ChildProcess; ready: Promise<void> } {
    const proc = fork(workerPath, [this.file, this.writable ? 'rw' : 'ro'], {
      execArgv: ['--import', tsxLoader],
      serialization: 'advanced',
      // stdout belongs to the MCP protocol: the child gets none.
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const ready = new Promise<void>((resolve, reject) => {
      proc.once('message', () => resolve());
      proc.once('exit', (code) => reject(new ToolError(`the SQLite worker exited (${code}) before it was ready; is ${this.file} a readable SQLite file?`)));
    });
    proc.on('exit', () => {
      if (this.child?.proc === proc) this.child = undefined;
    });
    // A send to a worker that just died emits 'error'; its 'exit' fails the query.
    proc.on('error', (err) => this.log(`SQLite worker: ${err.message}`));
    return { proc, ready };
  }

  private send(job: WorkerJob): Promise<WorkerReply> {
    const result = this.queue.then(async () => {
      this.child ??= this.spawn();
      const { proc, ready } = this.child;
      await ready;
      const id = ++this.nextId;
      return new Promise<WorkerReply>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.log(`SQLite statement ran past ${this.limits.statementTimeoutMs} ms; killing worker ${proc.pid}`);
          cleanup();
          if (this.child?.proc === proc) this.child = undefined;
          proc.kill('SIGKILL');
          reject(new ToolError(timeoutMessage(this.limits.statementTimeoutMs)));
        }, this.limits.statementTimeoutMs);
        const onMessage = (m: WorkerReply) => {
          if (m.id !== id) return;
          cleanup();
          resolve(m);
        };
        const onExit = (code: number | null) => {
          cleanup();
          reject(new ToolError(`the SQLite worker exited (${code}) during the query`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          proc.off('message', onMessage);
          proc.off('exit', onExit);
        };
        proc.on('message', onMessage);
        proc.once('exit', onExit);
        proc.send({ ...job, id });
      });
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  async run(q: GuardedSql, params: Param[]): Promise<QueryResult> {
    const { sql, bind } = await toSqlite(q.sql, params);
    const reply = await this.send({ sql, params: bind, rowLimit: this.limits.rowLimit, maxCellBytes: this.limits.maxCellBytes });
    if (!reply.ok) throw new ToolError(`database error: ${reply.error}`);
    if (!('rows' in reply)) throw new Error('unexpected worker reply');
    // SQLite's values are null, numbers, strings and blobs: any other object is a cell the worker cut.
    const isCut = (v: unknown): v is WorkerCut => !!v && typeof v === 'object' && !(v instanceof Uint8Array);
    const rows = reply.rows.map((row) => row.map((v) => (isCut(v) ? new CutCell(v.cut, v.bytes) : v)));
    return { columns: reply.columns, rows, truncated: reply.truncated, overflow: reply.overflow, changes: reply.changes };
  }

  async columnTypes(tables: string[]): Promise<Map<string, Map<string, string>>> {
    const reply = await this.send({ describe: tables });
    if (!reply.ok) throw new ToolError(`database error: ${reply.error}`);
    if (!('types' in reply)) throw new Error('unexpected worker reply');
    return new Map(reply.types.map(([t, cols]) => [t, new Map(cols)]));
  }

  async close(): Promise<void> {
    const proc = this.child?.proc;
    this.child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    // Disconnecting lets an idle worker close the database cleanly; a busy one is killed.
    proc.disconnect();
    const timer = setTimeout(() => proc.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(timer);
  }
}
