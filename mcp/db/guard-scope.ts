/**
 * Name resolution for the SQL guard. The guard must decide which relation a column
 * reference reads exactly as PostgreSQL will, or a name it believes safe could read
 * a hidden column. Rules that keep the two in step:
 * - A table relation exposes only its allowed columns; a derived one (subquery, CTE)
 *   only the output names PostgreSQL is certain to give it (see guard-names.ts).
 * - An unqualified name resolves in the innermost level that has relations and
 *   nowhere else: PostgreSQL could find a hidden column of the same name there.
 * - Every relation name (alias) means one relation in the whole statement, so a
 *   qualified reference reads the same relation whichever level PostgreSQL picks.
 */
import type { Node, SelectStmt } from 'libpg-query';
import type { Policy, TablePolicy } from './policy.ts';

/** A refusal with text the model can act on: what was rejected, what is allowed. */
export class GuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuardError';
  }
}

export interface Rel {
  /** The name a qualified reference uses (alias, table or CTE name); none for an unaliased subquery. */
  refname?: string;
  /** Identity: `table:<key>`, `cte:<n>` or `sub:<n>`. One refname, one identity. */
  id: string;
  /** Set for tables: the settings entry (allowed and sensitive columns). */
  table?: TablePolicy;
  /** As written in the query (`schema.table` references match on it). */
  schema?: string;
  aliased: boolean;
  columns: ReadonlySet<string>;
}

export interface Cte {
  id: string;
  columns: ReadonlySet<string>;
}

/** One query level (or a JOIN's ON clause): what its column references can see. */
export interface Level {
  parent?: Level;
  /** The WITH queries PostgreSQL lets a table name here read (earlier ones, or all under RECURSIVE). */
  ctes: Map<string, Cte>;
  /**
   * Every query of this level's WITH list, by lower-case name: SQLite reads a table name
   * as any of them, later ones and the one being defined included, compared without case.
   */
  withNames: Map<string, string>;
  rels: Rel[];
  /** Columns merged by JOIN ... USING: unqualified use is not ambiguous. */
  merged: Set<string>;
}

export interface GuardCtx {
  policy: Policy;
  /** refname → identity, across the whole statement. */
  refnames: Map<string, string>;
  nextId: () => number;
  /** Checks a nested SELECT whose outer level is `parent`; returns its output names. */
  subquery: (stmt: SelectStmt, parent: Level) => Array<string | undefined>;
}

/** A query level with no CTEs yet. */
export function newLevel(parent: Level | undefined, rels: Rel[] = []): Level {
  return { parent, ctes: new Map(), withNames: new Map(), rels, merged: new Set() };
}

/** The node's type name ({ ColumnRef: {...} } → 'ColumnRef'). */
export function kindOf(node: Node): string {
  return Object.keys(node)[0] ?? '(empty)';
}

/** Names from a list of String nodes (anything else becomes `<Kind>`, which matches nothing). */
export function strings(nodes: Node[] | undefined): string[] {
  return (nodes ?? []).map((n) => ('String' in n ? (n.String.sval ?? '') : `<${kindOf(n)}>`));
}

const STATEMENT_NAMES: Record<string, string> = {
  TransactionStmt: 'transaction control (BEGIN / COMMIT / ROLLBACK / SAVEPOINT)',
  CopyStmt: 'COPY',
  DoStmt: 'DO',
  VariableSetStmt: 'SET',
  VariableShowStmt: 'SHOW',
  ExplainStmt: 'EXPLAIN',
  InsertStmt: 'INSERT',
  UpdateStmt: 'UPDATE',
  DeleteStmt: 'DELETE',
  MergeStmt: 'MERGE',
  TruncateStmt: 'TRUNCATE',
  DropStmt: 'DROP',
  CreateStmt: 'CREATE TABLE',
  CreateTableAsStmt: 'CREATE TABLE AS',
  AlterTableStmt: 'ALTER TABLE',
  GrantStmt: 'GRANT / REVOKE',
  GrantRoleStmt: 'GRANT / REVOKE role',
  LockStmt: 'LOCK',
  PrepareStmt: 'PREPARE',
  ExecuteStmt: 'EXECUTE',
  CallStmt: 'CALL',
  DeclareCursorStmt: 'DECLARE CURSOR',
  FetchStmt: 'FETCH',
  ListenStmt: 'LISTEN',
  NotifyStmt: 'NOTIFY',
  VacuumStmt: 'VACUUM / ANALYZE',
  CreateFunctionStmt: 'CREATE FUNCTION',
  CreateRoleStmt: 'CREATE ROLE',
  AlterRoleStmt: 'ALTER ROLE',
  CreateExtensionStmt: 'CREATE EXTENSION',
  LoadStmt: 'LOAD',
};

/** A statement's SQL name for messages (DropStmt → DROP). */
export function statementName(node: Node | undefined): string {
  const kind = node ? kindOf(node) : '(empty)';
  return STATEMENT_NAMES[kind] ?? kind.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

/** Record a relation's name; refuses a name already used for a different relation. */
export function registerRel(ctx: GuardCtx, rel: Rel): void {
  if (rel.refname === undefined) return;
  // By lower case: SQLite compares names without case, so "U" and u would be one
  // relation to it and two to the guard.
  const key = rel.refname.toLowerCase();
  const seen = ctx.refnames.get(key);
  if (seen !== undefined && seen !== rel.id) {
    throw new GuardError(`the name "${rel.refname}" is used for two different tables or subqueries (names are compared without case); give each a distinct alias`);
  }
  ctx.refnames.set(key, rel.id);
}

/**
 * The CTE a bare table name refers to, innermost WITH first. PostgreSQL and SQLite must
 * read the name as the same relation: SQLite takes the innermost WITH list holding the
 * name in any case, any of its queries (a later one, or the one being defined), where
 * PostgreSQL passes over those to an outer WITH query or the table. Read otherwise,
 * a column the guard found in the relation PostgreSQL reads is missing from the one
 * SQLite reads, and SQLite looks it up in an outer query: a hidden column of a table there.
 */
export function findCte(level: Level | undefined, name: string): Cte | undefined {
  for (let l = level; l; l = l.parent) {
    const declared = l.withNames.get(name.toLowerCase());
    if (declared === undefined) continue;
    const cte = l.ctes.get(name);
    if (cte && declared === name) return cte;
    throw new GuardError(
      declared !== name
        ? `FROM ${name}: SQLite would read the WITH query ${declared} here (it compares names without case), PostgreSQL another relation; name WITH queries apart from each other and from tables by more than case`
        : `FROM ${name}: SQLite would read the WITH query ${name} here (a WITH query may read later ones of its list, and itself), PostgreSQL a table or an outer WITH query of that name; define a WITH query before those that read it, under a name no table has`,
    );
  }
  return undefined;
}

function relLabel(rel: Rel): string {
  return rel.table?.key ?? rel.refname ?? 'subquery';
}

/** "users(id, email); o: orders(id, total)" for the relations a message is about. */
export function describeRels(rels: Rel[]): string {
  if (rels.length === 0) return '(no tables in scope)';
  const parts = rels.map((r) => {
    const label = relLabel(r);
    const prefix = r.refname && r.refname !== label ? `${r.refname}: ` : '';
    return `${prefix}${label}(${[...r.columns].join(', ') || 'no nameable columns'})`;
  });
  return [...new Set(parts)].join('; ');
}

function notAllowed(col: string, rels: Rel[], qualifier?: string): GuardError {
  const sensitiveIn = rels.filter((r) => r.table?.sensitive.has(col)).map((r) => r.table!.key);
  const what = qualifier ? `${qualifier}.${col}` : col;
  const why = sensitiveIn.length > 0 ? ` is sensitive (${sensitiveIn.join(', ')}) and never visible` : ' is not an allowed column here';
  const hint = qualifier || sensitiveIn.length > 0 ? '' : ' (a reference to an outer query must be qualified with its alias)';
  return new GuardError(`column ${what}${why}${hint}. Allowed columns: ${describeRels(rels)}`);
}

function findRel(level: Level, qualifier: string, schema?: string): Rel | undefined {
  for (let l: Level | undefined = level; l; l = l.parent) {
    const rel = l.rels.find((r) => r.refname === qualifier && (schema === undefined || (r.table && !r.aliased && r.schema === schema)));
    if (rel) return rel;
  }
  return undefined;
}

/** Resolve `col`, `rel.col` or `schema.rel.col`; throws unless it reads an allowed column. */
export function resolveColumn(level: Level, fields: string[]): void {
  if (fields.length === 1) {
    const col = fields[0]!;
    let l: Level | undefined = level;
    while (l && l.rels.length === 0) l = l.parent;
    if (!l) throw new GuardError(`column ${col} does not name a column of any table in scope; add a FROM clause`);
    const hits = l.rels.filter((r) => r.columns.has(col));
    if (hits.length === 0 && findRel(level, col)) {
      throw new GuardError(`${col} names a whole row, which would include columns that are not allowed; name the columns. Allowed columns: ${describeRels(l.rels)}`);
    }
    if (hits.length === 0) throw notAllowed(col, l.rels);
    if (hits.length > 1 && !l.merged.has(col)) {
      throw new GuardError(`column ${col} is ambiguous (${hits.map(relLabel).join(', ')}); qualify it with a table alias`);
    }
    return;
  }
  if (fields.length > 3) throw new GuardError(`column reference ${fields.join('.')} has too many parts`);
  const col = fields[fields.length - 1]!;
  const qualifier = fields[fields.length - 2]!;
  const schema = fields.length === 3 ? fields[0] : undefined;
  const rel = findRel(level, qualifier, schema);
  if (!rel) {
    const names = collectRels(level).map((r) => r.refname).filter(Boolean);
    throw new GuardError(`${fields.slice(0, -1).join('.')} is not a table or alias in scope here (in scope: ${names.join(', ') || 'none'})`);
  }
  if (!rel.columns.has(col)) throw notAllowed(col, [rel], fields.slice(0, -1).join('.'));
}

/** Every relation visible from `level` (for messages). */
export function collectRels(level: Level): Rel[] {
  const out: Rel[] = [];
  for (let l: Level | undefined = level; l; l = l.parent) out.push(...l.rels);
  return out;
}
