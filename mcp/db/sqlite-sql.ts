/**
 * Turning a guarded statement into text SQLite reads the same way. The guard judged
 * PostgreSQL's reading; SQLite's lexer differs in ways that matter: it does not nest
 * block comments, so `/* /* *\/ , secret /* *\/ ...` hides a column from PostgreSQL
 * but not from SQLite; and E'..', U&'..', $$..$$ and B'..' strings mean other things
 * to it. So the statement is rebuilt from PostgreSQL's own tokens: comments become
 * spaces, only plain '...' strings and "..." identifiers are kept, `$n` becomes `?n`,
 * TRUE and FALSE become 1 and 0 (SQLite reads a column named true first, where one exists).
 * PostgreSQL's other reserved words that SQLite does not know (TRIM(LEADING ...), BETWEEN
 * SYMMETRIC, VARIADIC, UNKNOWN ...) are refused: SQLite would read them as column names.
 * So are names longer than 63 bytes: PostgreSQL cuts them to 63, SQLite reads them whole.
 */
import { loadModule, scanSync } from 'libpg-query';
import { ToolError } from '../shared/tool.ts';
import type { Param } from './backend.ts';

const COMMENTS = new Set(['C_COMMENT', 'SQL_COMMENT']);

/** libpg-query's keyword kinds that PostgreSQL never reads as a plain column name. */
const TYPE_FUNC_NAME_KEYWORD = 3;
const RESERVED_KEYWORD = 4;

/** SQLite's keywords (sqlite.org/lang_keywords.html): a PostgreSQL keyword among them is a keyword to SQLite too. */
const SQLITE_KEYWORDS = new Set(
  (
    'abort action add after all alter always analyze and as asc attach autoincrement before begin between by cascade case cast ' +
    'check collate column commit conflict constraint create cross current current_date current_time current_timestamp database ' +
    'default deferrable deferred delete desc detach distinct do drop each else end escape except exclude exclusive exists explain ' +
    'fail filter first following for foreign from full generated glob group groups having if ignore immediate in index indexed ' +
    'initially inner insert instead intersect into is isnull join key last left like limit match materialized natural no not ' +
    'nothing notnull null nulls of offset on or order others outer over partition plan pragma preceding primary query raise range ' +
    'recursive references regexp reindex release rename replace restrict returning right rollback row rows savepoint select set ' +
    'table temp temporary then ties to transaction trigger unbounded union unique update using vacuum values view virtual when ' +
    'where window with without'
  ).split(' '),
);

/** PostgreSQL's longest name (NAMEDATALEN - 1): longer ones are cut to it. */
const MAX_NAME_BYTES = 63;

/** An identifier token's name in bytes ("a""b" is a"b). */
function nameBytes(text: string): number {
  return Buffer.byteLength(text.startsWith('"') ? text.slice(1, -1).replaceAll('""', '"') : text);
}

/** SQLite text and named bindings ({ '1': v1, ... }) for a guarded statement. */
export async function toSqlite(sql: string, params: Param[]): Promise<{ sql: string; bind: Record<string, unknown> }> {
  await loadModule();
  let out = '';
  let pos = 0;
  const bind: Record<string, unknown> = {};
  /** The previous token that is not a comment. */
  let last = '';
  // Token offsets count UTF-8 bytes: cut the bytes, not the string (one multibyte
  // character would shift every later token, and a refused literal would slip through).
  const bytes = Buffer.from(sql, 'utf8');
  const at = (from: number, to?: number) => bytes.subarray(from, to).toString('utf8');
  for (const tok of scanSync(sql).tokens) {
    const gap = at(pos, tok.start);
    if (gap.trim() !== '') throw new ToolError(`cannot translate "${gap.trim()}" for SQLite`);
    out += gap;
    pos = tok.end;
    const text = at(tok.start, tok.end);
    const prev = last;
    if (!COMMENTS.has(tok.tokenName)) last = text;
    if (COMMENTS.has(tok.tokenName)) {
      out += ' ';
    } else if (tok.tokenName === 'PARAM') {
      const n = Number(text.slice(1));
      if (n > params.length) throw new ToolError(`the query uses ${text} but only ${params.length} params were given`);
      const v = params[n - 1];
      bind[String(n)] = typeof v === 'boolean' ? Number(v) : v;
      out += `?${n}`;
    } else if (text === '[' || text === ']') {
      // SQLite reads [...] as a quoted name: a PostgreSQL subscript around a string
      // literal's quote would turn the guarded literal into SQL.
      throw new ToolError('[...] subscripts are PostgreSQL-only (SQLite reads [...] as a quoted name); use json_extract() or ->> on SQLite');
    } else if (/^(true|false)$/i.test(text) && prev !== '.' && !/^as$/i.test(prev)) {
      // PostgreSQL's boolean constants; SQLite reads a column of that name, where one
      // exists, first. (After AS or a dot it is a name: an alias, t.true.)
      out += /^true$/i.test(text) ? '1' : '0';
    } else if (/^unknown$/i.test(text) && prev !== '.' && !/^as$/i.test(prev)) {
      // IS [NOT] UNKNOWN: SQLite would read a column named unknown (testing a hidden value against a guess).
      throw new ToolError('IS [NOT] UNKNOWN is PostgreSQL-only; use IS NULL / IS NOT NULL on SQLite');
    } else if (
      (tok.keywordKind === RESERVED_KEYWORD || tok.keywordKind === TYPE_FUNC_NAME_KEYWORD) &&
      !SQLITE_KEYWORDS.has(text.toLowerCase()) &&
      prev !== '.' &&
      !/^as$/i.test(prev)
    ) {
      // A word PostgreSQL reads as syntax, SQLite as a column: TRIM(LEADING || '') selected a
      // hidden column named leading, x BETWEEN SYMMETRIC || '' AND 'z' compared one with a guess.
      throw new ToolError(`${text} is PostgreSQL syntax SQLite does not have (it would read a column named ${text.toLowerCase()}); rewrite the query without it`);
    } else if (tok.tokenName === 'IDENT' && nameBytes(text) > MAX_NAME_BYTES) {
      // PostgreSQL (and so the guard) cuts a longer name to its first 63 bytes; SQLite reads it
      // whole. The guard took `SELECT <hidden column's 72-byte name> FROM (SELECT o.status AS
      // <its first 63 bytes>x ...) s` for s's column, SQLite found none in s and read the
      // hidden column of an outer query's table.
      throw new ToolError(
        `the name ${text.slice(0, 40)}... is longer than ${MAX_NAME_BYTES} bytes: PostgreSQL cuts names to ${MAX_NAME_BYTES} bytes and SQLite does not, ` +
          'so the two would read different columns; use a shorter alias',
      );
    } else if (/^[a-z]*&?['"$]/i.test(text) && !/^['"]/.test(text)) {
      throw new ToolError(`${text.slice(0, 20)}: E'...', U&'...', $$...$$, B'...' and X'...' literals are PostgreSQL-only; use plain '...' strings on SQLite`);
    } else {
      out += text;
    }
  }
  if (at(pos).trim() !== '') throw new ToolError(`cannot translate "${at(pos).trim()}" for SQLite`);
  return { sql: out, bind };
}
