/**
 * A throwaway PostgreSQL for tests: Debian's server binaries, initdb into a temp
 * dir, listening only on 127.0.0.1 at a private port (the unix socket goes into the
 * temp dir too), password auth. The caller's schema SQL runs as the superuser in
 * database `bugbot`; then role `bugbot_ro` gets CONNECT, USAGE on `public` and SELECT
 * on every table there, nothing else. Stopped and removed when the test ends.
 *
 * Usage, in a test:
 *   const pg = await startPostgres(t, { schemaSql: 'CREATE TABLE ...; INSERT ...' });
 *   pg.adminUrl / pg.readonlyUrl; await pg.admin('SELECT ...');
 * For a whole suite, start it in `before` with `undefined` as owner and call
 * `pg.stop()` in `after` (an `after` registered from inside a hook runs when the hook
 * ends). An exit hook stops the server if the test process exits first.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './process.ts';

export interface TestPostgres {
  /** Superuser `postgres` on database `bugbot`. */
  adminUrl: string;
  /** Role `bugbot_ro`: SELECT on the tables of `public`, no writes. */
  readonlyUrl: string;
  port: number;
  /** Run SQL as the superuser (a fresh connection each call). */
  admin: (sql: string, params?: unknown[]) => Promise<pg.QueryResult>;
  /** Stop the server and remove its files; idempotent, also run by `after`. */
  stop: () => Promise<void>;
}

interface Cleanup {
  after: (fn: () => Promise<void>) => void;
}

/** Where the server binaries live: BUGBOT_PG_BIN, else the newest /usr/lib/postgresql/N/bin. */
function pgBinDir(): string {
  const fromEnv = process.env.BUGBOT_PG_BIN;
  const candidates = fromEnv
    ? [fromEnv]
    : existsSync('/usr/lib/postgresql')
      ? readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)).map((v) => `/usr/lib/postgresql/${v}/bin`)
      : [];
  const dir = candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
  if (!dir) {
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl) not found. Install them with `bash scripts/install-test-deps.sh` ' +
        '(Debian: `apt-get install postgresql`), or set BUGBOT_PG_BIN to the directory holding initdb and pg_ctl.',
    );
  }
  return dir;
}

/** Postgres refuses to run as root: as root, run its tools as the `postgres` OS user. */
function asPgUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function run(cmd: string, args: string[]): void {
  const [c, a] = asPgUser(cmd, args);
  try {
    execFileSync(c, a, { stdio: 'pipe', timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; stdout?: Buffer; message: string };
    throw new Error(`${cmd} failed: ${e.message}\n${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`);
  }
}

/**
 * Start a private PostgreSQL, run `schemaSql` as superuser, create the read-only role.
 * `owner` (a TestContext) gets an `after` that stops it; without one, call `stop()`.
 */
export async function startPostgres(owner: Cleanup | undefined, opts: { schemaSql?: string } = {}): Promise<TestPostgres> {
  const bin = pgBinDir();
  const root = mkdtempSync(join(tmpdir(), 'bugbot-pg-'));
  const dataDir = join(root, 'data');
  const sockDir = join(root, 'sock');
  const logFile = join(root, 'server.log');
  mkdirSync(sockDir);
  const adminPw = randomBytes(12).toString('hex');
  const roPw = randomBytes(12).toString('hex');
  writeFileSync(join(root, 'pw'), adminPw);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    for (const p of [root, sockDir, join(root, 'pw')]) chownSync(p, uid, gid);
  }

  let stopped = false;
  let started = false;
  // pg_ctl daemonizes the server: it outlives this process unless stopped explicitly.
  const stopSync = (): void => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stopSync);
    if (started) {
      try {
        run(join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '30']);
      } catch (err) {
        // Last resort: kill the postmaster by the PID it recorded.
        const pidFile = join(dataDir, 'postmaster.pid');
        if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGKILL');
        process.stderr.write(`test postgres: ${(err as Error).message}\n`);
      }
    }
    if (!process.env.BUGBOT_KEEP_TMP) rmSync(root, { recursive: true, force: true });
  };
  const stop = async (): Promise<void> => stopSync();
  process.once('exit', stopSync);
  owner?.after(stop);

  run(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'scram-sha-256', `--pwfile=${join(root, 'pw')}`, '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
  const port = await freePort();
  const serverOpts = `-p ${port} -k ${sockDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  started = true;
  try {
    run(join(bin, 'pg_ctl'), ['start', '-D', dataDir, '-l', logFile, '-o', serverOpts, '-w', '-t', '30']);
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    stopSync();
    throw new Error(`${(err as Error).message}\nserver log:\n${log}`);
  }

  const url = (user: string, pw: string, db: string) => `postgres://${user}:${pw}@127.0.0.1:${port}/${db}`;
  const adminUrl = url('postgres', adminPw, 'bugbot');
  const admin = async (sql: string, params?: unknown[]): Promise<pg.QueryResult> => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end();
    }
  };

  try {
    const bootstrap = new pg.Client({ connectionString: url('postgres', adminPw, 'postgres') });
    await bootstrap.connect();
    try {
      await bootstrap.query('CREATE DATABASE bugbot');
    } finally {
      await bootstrap.end();
    }
    if (opts.schemaSql) await admin(opts.schemaSql);
    await admin(
      `CREATE ROLE bugbot_ro LOGIN PASSWORD '${roPw}';
       GRANT CONNECT ON DATABASE bugbot TO bugbot_ro;
       GRANT USAGE ON SCHEMA public TO bugbot_ro;
       GRANT SELECT ON ALL TABLES IN SCHEMA public TO bugbot_ro;`,
    );
  } catch (err) {
    // Without an owner nobody else could stop it: the caller never gets the handle.
    stopSync();
    throw err;
  }
  return { adminUrl, readonlyUrl: url('bugbot_ro', roPw, 'bugbot'), port, admin, stop };
}
