/**
 * The safe-SQL layers of `run_sql`, as pure functions (the tool in mcp/tools/runSql.ts does the I/O):
 *
 * 1. `validateSelect(sql, policy)`: a ClickHouse-aware tokenizer (string literals with their escape
 *    rules, quoted identifiers, `--` / `# ` / nested block comments) and checks over the tokens:
 *    exactly one SELECT or WITH…SELECT; no SETTINGS, FORMAT, INTO OUTFILE; no table functions and
 *    no I/O, sleep, dictionary or server-state functions; tables only from the allowlist, qualified
 *    by the configured database (bare names are rewritten to `<db>.<table>`); no system tables or
 *    other databases; CTE names renamed so an out-of-scope CTE cannot resolve to a real table.
 *    The accepted query is RE-RENDERED from the checked tokens (comments dropped, strings
 *    re-escaped), so ClickHouse executes exactly the token stream that was checked, never the
 *    agent's raw text.
 * 2. `executionSql(sql, limits)`: the execution wrapper for any text, validated or not. It refuses
 *    text that could hold a second statement, a comment or a SETTINGS clause (`guardStatementText`:
 *    chDB runs `a; b` as two statements, and a subquery's own SETTINGS clause lifts `readonly`
 *    there), wraps the query as a subquery (so FORMAT / INTO OUTFILE are syntax errors), applies a
 *    LIMIT and a server-side running byte count, and appends the read-only SETTINGS clause
 *    (readonly = 1 refuses DDL, DML, INSERT and the file/url/remote/s3… table functions).
 * 3. `capResult(...)`: the row and byte caps on what goes back to the agent, with the reason;
 *    `columnsTooLarge(...)`: the cap on column names and types.
 *
 * Leaves to others: running the query and the tool contract (mcp/tools/runSql.ts), the column
 * documentation (schemas/clickhouse/columns.ts).
 */
import { availableParallelism } from 'node:os';
import { settingsClause, sqlStringLiteral } from './sql.js';

/** Longest SQL text accepted (characters). */
export const MAX_SQL_LENGTH = 20_000;
/** Deepest parenthesis nesting accepted. */
const MAX_DEPTH = 64;

export interface SafeSqlPolicy {
  /** The configured database; the only one a query may name. */
  database: string;
  /** Tables of `database` a query may read. */
  tables: readonly string[];
  /** Longest accepted text; default MAX_SQL_LENGTH. */
  maxLength?: number;
  /**
   * Rows a query may see, by table (bare name) → boolean SQL expression (ours, never the
   * agent's). Every reference to such a table is rewritten to `(SELECT * FROM db.t WHERE expr)`,
   * so ClickHouse evaluates the agent's expressions only over rows that passed the filter first,
   * and PREWHERE (which runs before any filter) is refused.
   */
  rowFilters?: Readonly<Record<string, string>>;
}

export type SafeSqlResult =
  | { ok: true; sql: string; tables: string[] }
  | { ok: false; error: string };

// ---- tokens ---------------------------------------------------------------------------------------

type Token =
  | { kind: 'word'; text: string; pos: number }
  | { kind: 'quoted'; text: string; pos: number }
  | { kind: 'string'; text: string; pos: number }
  | { kind: 'number'; text: string; pos: number }
  | { kind: 'op'; text: string; pos: number };

class Refusal extends Error {}
const refuse = (message: string): never => {
  throw new Refusal(message);
};

const OPERATORS = ['<=>', '::', '->', '<=', '>=', '!=', '<>', '==', '||', '(', ')', '[', ']', ',', '.', '+', '-', '*', '/', '%', '=', '<', '>', '?', ':', ';'];
const WORD_START = /[A-Za-z_]/;
const WORD_CHAR = /[A-Za-z0-9_]/;
const NUMBER_RE = /^(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)/;

/** Stand-ins for raw bytes 0x80–0xFF written as \xHH (private-use characters U+F780–U+F7FF). */
const RAW_BYTE_BASE = 0xf700;
const isRawByte = (code: number) => code >= RAW_BYTE_BASE + 0x80 && code <= RAW_BYTE_BASE + 0xff;

/** ClickHouse's escape rules inside quotes (ReadHelpers parseComplexEscapeSequence). */
function decodeEscape(src: string, i: number): { value: string; next: number } {
  const c = src[i + 1];
  if (c === undefined) return refuse(`unterminated string or quoted identifier at position ${i}`);
  if (c === 'x' || c === 'X') {
    const hex = src.slice(i + 2, i + 4);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) return refuse(`bad escape \\${c}${hex} at position ${i}: \\x needs two hex digits`);
    const byte = parseInt(hex, 16);
    // \xHH is a raw byte: above 0x7F it is kept as a stand-in character and rendered as \xHH again.
    return { value: String.fromCharCode(byte < 0x80 ? byte : RAW_BYTE_BASE + byte), next: i + 4 };
  }
  if (c === 'N') return { value: '', next: i + 2 };
  const simple: Record<string, string> = { a: '\x07', b: '\b', e: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '0': '\0' };
  const decoded = simple[c] ?? c;
  // ClickHouse keeps the backslash of an unknown escape ('100\%' stays 100\%) except for quotes, \ and /.
  const keepBackslash = !['\\', "'", '"', '`', '/'].includes(decoded) && decoded.charCodeAt(0) >= 0x20 && decoded !== '\x7f';
  return { value: (keepBackslash ? '\\' : '') + decoded, next: i + 2 };
}

function readQuoted(src: string, start: number, quote: string): { value: string; next: number } {
  let value = '';
  let i = start + 1;
  for (;;) {
    const c = src[i];
    if (c === undefined) return refuse(`unterminated ${quote === "'" ? 'string' : 'quoted identifier'} starting at position ${start}`);
    if (c === '\\') {
      const e = decodeEscape(src, i);
      value += e.value;
      i = e.next;
    } else if (c === quote) {
      if (src[i + 1] === quote) {
        value += quote;
        i += 2;
      } else {
        return { value, next: i + 1 };
      }
    } else {
      if (isRawByte(c.charCodeAt(0))) refuse(`character U+${c.charCodeAt(0).toString(16).toUpperCase()} at position ${i} is not supported`);
      value += c;
      i++;
    }
  }
}

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const last = () => tokens[tokens.length - 1];
  while (i < src.length) {
    const c = src[i]!;
    const code = c.charCodeAt(0);
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '-' && src[i + 1] === '-') {
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end + 1;
    } else if (c === '#') {
      // ClickHouse reads `# ` and `#!` as comments to the end of the line; other `#` are errors.
      if (src[i + 1] !== ' ' && src[i + 1] !== '!') refuse(`unexpected '#' at position ${i} (a comment is "-- text")`);
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end + 1;
    } else if (c === '/' && src[i + 1] === '*') {
      // Block comments nest in ClickHouse.
      let depth = 0;
      let j = i;
      for (;;) {
        if (j >= src.length) refuse(`unterminated /* comment starting at position ${i}`);
        if (src[j] === '/' && src[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (src[j] === '*' && src[j + 1] === '/') {
          depth--;
          j += 2;
          if (depth === 0) break;
        } else {
          j++;
        }
      }
      i = j;
    } else if (c === "'") {
      const s = readQuoted(src, i, "'");
      tokens.push({ kind: 'string', text: s.value, pos: i });
      i = s.next;
    } else if (c === '`' || c === '"') {
      const s = readQuoted(src, i, c);
      tokens.push({ kind: 'quoted', text: s.value, pos: i });
      i = s.next;
    } else if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < src.length && WORD_CHAR.test(src[j]!)) j++;
      tokens.push({ kind: 'word', text: src.slice(i, j), pos: i });
      i = j;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? '') && !isOperandEnd(last()))) {
      const m = NUMBER_RE.exec(src.slice(i, i + 400));
      if (!m) return refuse(`malformed number at position ${i}`);
      const next = src[i + m[0].length];
      if (next !== undefined && /[A-Za-z0-9_]/.test(next)) refuse(`malformed number at position ${i}`);
      tokens.push({ kind: 'number', text: m[0], pos: i });
      i += m[0].length;
    } else if (c === '{' || c === '}') {
      refuse(`'${c}' at position ${i}: query parameters and map literals are not supported (use map(k, v))`);
    } else if (c === '$') {
      refuse(`'$' at position ${i}: heredoc strings are not supported; use '...' strings`);
    } else if (code < 0x20 || code === 0x7f) {
      refuse(`control character U+${code.toString(16).padStart(4, '0').toUpperCase()} at position ${i}`);
    } else if (code > 0x7e) {
      refuse(
        `non-ASCII character '${c}' (U+${code.toString(16).padStart(4, '0').toUpperCase()}) at position ${i} outside a string: ` +
          `use ASCII quotes (' for strings, \` for names) and plain spaces`,
      );
    } else {
      const op = OPERATORS.find((o) => src.startsWith(o, i));
      if (!op) return refuse(`unexpected character '${c}' at position ${i}`);
      tokens.push({ kind: 'op', text: op, pos: i });
      i += op.length;
    }
  }
  return tokens;
}

function isOperandEnd(t: Token | undefined): boolean {
  return !!t && (t.kind === 'word' || t.kind === 'quoted' || t.kind === 'number' || (t.kind === 'op' && (t.text === ')' || t.text === ']')));
}

// ---- word lists ---------------------------------------------------------------------------------------

/** Statement keywords: a query starting with one of these (or holding one as a bare word) is not a SELECT. */
const STATEMENT_WORDS = new Set([
  'insert', 'create', 'drop', 'alter', 'attach', 'detach', 'truncate', 'rename', 'grant', 'revoke', 'kill', 'optimize',
  'system', 'set', 'use', 'exchange', 'undrop', 'backup', 'restore', 'delete', 'update', 'explain', 'show', 'describe',
  'check', 'watch', 'move', 'begin', 'commit', 'rollback', 'execute',
]);

/** Clauses that would change where or how the result goes, or the settings it runs with. */
const CLAUSE_WORDS: Record<string, string> = {
  settings: 'SETTINGS clauses are not allowed: run_sql applies its own read-only settings',
  format: 'FORMAT clauses are not allowed: run_sql returns JSON rows itself',
  into: 'INTO OUTFILE is not allowed: run_sql returns rows, it writes nothing',
  outfile: 'INTO OUTFILE is not allowed: run_sql returns rows, it writes nothing',
};

/**
 * Every ClickHouse table function (system.table_functions of chDB 3.4 / ClickHouse 26.7, plus
 * chDB's `python`): refused anywhere they are called. `format` is also a harmless string
 * function, so it is left out here; in table position (FROM/JOIN) every name followed by `(` is
 * refused anyway. The integration test checks this list against the engine's.
 */
export const TABLE_FUNCTIONS = [
  'SQLStandardValues', 'arrowstream', 'azureBlobStorage', 'azureBlobStorageCluster', 'cluster', 'clusterAllReplicas', 'cosn',
  'deltaLake', 'deltaLakeAzure', 'deltaLakeAzureCluster', 'deltaLakeCluster', 'deltaLakeLocal', 'deltaLakeS3', 'deltaLakeS3Cluster',
  'dictionary', 'eval', 'executable', 'file', 'fileCluster', 'filesystem', 'fuzzJSON', 'fuzzQuery', 'gcs', 'generateRandom',
  'generateSeries', 'generate_series', 'hdfs', 'hdfsCluster', 'hudi', 'hudiCluster', 'iceberg', 'icebergAzure',
  'icebergAzureCluster', 'icebergCluster', 'icebergHDFS', 'icebergHDFSCluster', 'icebergLocal', 'icebergLocalCluster',
  'icebergS3', 'icebergS3Cluster', 'input', 'jdbc', 'loop', 'merge', 'mergeTreeAnalyzeIndexes', 'mergeTreeAnalyzeIndexesUUID',
  'mergeTreeIndex', 'mergeTreeProjection', 'mergeTreeTextIndex', 'mongodb', 'mysql', 'null', 'numbers', 'numbers_mt', 'odbc',
  'oss', 'paimon', 'paimonAzure', 'paimonAzureCluster', 'paimonCluster', 'paimonHDFS', 'paimonHDFSCluster', 'paimonLocal',
  'paimonS3', 'paimonS3Cluster', 'postgresql', 'primes', 'prometheusQuery', 'prometheusQueryRange', 'redis', 'remote',
  'remoteSecure', 's3', 's3Cluster', 'sqlite', 'timeSeriesData', 'timeSeriesMetrics', 'timeSeriesSamples',
  'timeSeriesSelector', 'timeSeriesTags', 'url', 'urlCluster', 'values', 'view', 'viewExplain', 'viewIfPermitted', 'ytsaurus',
  'zeros', 'zeros_mt', 'python',
] as const;

/**
 * Ordinary functions that read files, other tables or dictionaries, sleep, or reveal the server
 * (settings, macros, users, profiles, certificates, addresses). `file('/etc/passwd')` works as a
 * plain function under readonly = 1 in chDB, so this list is the only thing between it and an
 * agent: keep it generous.
 */
export const DENIED_FUNCTIONS = [
  'file', 'joinGet', 'joinGetOrNull', 'hasColumnInTable', 'getSubcolumn', 'sleep', 'sleepEachRow', 'catboostEvaluate',
  'evalMLMethod', 'modelEvaluate', 'addressToLine', 'addressToLineWithInlines', 'addressToSymbol', 'demangle', 'trap',
  'filesystemAvailable', 'filesystemCapacity', 'filesystemUnreserved', 'getMacro', 'getServerPort', 'getServerSetting',
  'getMergeTreeSetting', 'getSetting', 'getSettingOrDefault', 'getClientHTTPHeader', 'getOSKernelVersion', 'globalVariable',
  'showCertificate', 'currentProfiles', 'enabledProfiles', 'defaultProfiles', 'currentRoles', 'enabledRoles', 'defaultRoles',
  'currentUser', 'current_user', 'user', 'authUser', 'authenticatedUser', 'session_user', 'serverUUID', 'hostName', 'hostname',
  'fqdn', 'fullHostName', 'zookeeperSessionUptime', 'uptime', 'getMaxTableNameLengthForDatabase', 'structureToCapnProtoSchema',
  'structureToProtobufSchema', 'transactionID', 'transactionLatestSnapshot', 'transactionOldestSnapshot', 'queryString',
  'initialQueryID', 'initial_query_id', 'queryID', 'query_id', 'currentQueryID', 'current_query_id',
  'currentDatabase', 'current_database', 'currentSchemas', 'current_schemas', 'database', 'schema', 'displayName', 'tcpPort',
  // The function forms of IN read a table named as their second argument (`in(x, db.t)`); the
  // IN operator, whose table position is checked, says the same.
  'notIn', 'globalIn', 'globalNotIn', 'nullIn', 'notNullIn', 'globalNullIn', 'globalNotNullIn', 'inIgnoreSet',
  'notInIgnoreSet', 'globalInIgnoreSet', 'globalNotInIgnoreSet', 'nullInIgnoreSet', 'notNullInIgnoreSet',
  'globalNullInIgnoreSet', 'globalNotNullInIgnoreSet',
] as const;

/**
 * Names ClickHouse resolves without parentheses to server state when no column of that name is in
 * scope (measured on ClickHouse 26.7: `SELECT database` answers the current database; the
 * SQL-keyword forms in any case, quoted or not). Refused as bare names; `user`, a column of the
 * read model, is allowed in exactly that spelling and shadowed by the execution wrapper
 * (`SERVER_NAME_SHADOWS`), so where no column answers it, it reads NULL.
 */
const SERVER_NAMES = new Set(['user', 'currentuser', 'current_user', 'session_user', 'currentdatabase', 'current_database', 'database', 'schema']);
/** The exact spellings the execution wrapper binds to NULL (aliases are case-sensitive). */
const SERVER_NAME_SHADOWS = ['user', 'currentUser', 'currentDatabase', 'database', 'schema', 'DATABASE', 'SCHEMA', 'USER'];

const DENIED_CALLS = new Map<string, string>();
for (const f of DENIED_FUNCTIONS) DENIED_CALLS.set(f.toLowerCase(), 'reads files, other tables or server state, or sleeps');
for (const f of TABLE_FUNCTIONS) DENIED_CALLS.set(f.toLowerCase(), 'is a table function');
const isDictFunction = (lower: string) => lower.startsWith('dictget') || lower.startsWith('dicthas') || lower.startsWith('dictisin');

/** Names nobody may mention, bare or quoted, in any case. */
const FORBIDDEN_NAMES = new Set(['system', 'information_schema', 'default']);
/** Prefix of renamed CTEs and of the wrapper's own columns; reserved. */
const RESERVED_PREFIXES = ['jobscribe_cte_', '__jobscribe'];
const CTE_PREFIX = 'jobscribe_cte_';

/** Words that end a table reference instead of aliasing it. */
const AFTER_TABLE_WORDS = new Set([
  'final', 'sample', 'where', 'prewhere', 'group', 'order', 'limit', 'having', 'window', 'qualify', 'union', 'except',
  'intersect', 'join', 'inner', 'left', 'right', 'full', 'cross', 'outer', 'any', 'all', 'asof', 'semi', 'anti', 'global',
  'local', 'paste', 'array', 'on', 'using', 'offset', 'fetch', 'settings', 'format', 'into', 'with', 'by', 'as', 'natural',
]);
/** Keywords followed by an expression (a name after them is not an implicit alias). */
const EXPRESSION_STARTERS = new Set([
  'select', 'distinct', 'where', 'prewhere', 'by', 'and', 'or', 'not', 'on', 'when', 'then', 'else', 'case', 'from', 'join',
  'in', 'having', 'like', 'ilike', 'is', 'between', 'using', 'limit', 'offset', 'top', 'all', 'any', 'array', 'interval', 'over',
  'qualify', 'exists', 'with', 'partition', 'final',
]);
/** Functions whose arguments may hold a FROM or IN that is not a table (SQL-standard syntax). */
const FROM_FUNCTIONS = new Set(['extract', 'substring', 'substr', 'trim', 'ltrim', 'rtrim', 'overlay', 'overlayutf8', 'position']);
/** Words after which a FROM list's commas no longer separate tables. */
const FROM_END_WORDS = new Set(['where', 'prewhere', 'group', 'order', 'having', 'limit', 'window', 'qualify', 'union', 'except', 'intersect', 'select', 'offset', 'fetch']);

// ---- validation ---------------------------------------------------------------------------------------

/** Is the `in` at tokens[i] the operator (`x IN …`, `x NOT IN …`, `x GLOBAL NOT IN …`)? */
function isInOperator(tokens: Token[], i: number): boolean {
  let k = i - 1;
  while (k >= 0 && ['not', 'global'].includes(lower(tokens[k]) ?? '')) k--;
  const before = tokens[k];
  if (!isOperandEnd(before)) return false;
  return !(before!.kind === 'word' && EXPRESSION_STARTERS.has(before!.text.toLowerCase()));
}

const lower = (t: Token | undefined) => (t && t.kind === 'word' ? t.text.toLowerCase() : undefined);
const isName = (t: Token | undefined): t is Extract<Token, { kind: 'word' | 'quoted' }> => !!t && (t.kind === 'word' || t.kind === 'quoted');
const isOp = (t: Token | undefined, op: string) => !!t && t.kind === 'op' && t.text === op;
const shown = (t: Token) => (t.kind === 'quoted' ? `\`${t.text}\`` : t.text);

/** Validates one read-only SELECT and returns the SQL to run (rewritten and re-rendered). */
export function validateSelect(sql: string, policy: SafeSqlPolicy): SafeSqlResult {
  try {
    return { ok: true, ...validate(sql, policy) };
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, error: err.message };
    throw err;
  }
}

function validate(sql: string, policy: SafeSqlPolicy): { sql: string; tables: string[] } {
  const maxLength = policy.maxLength ?? MAX_SQL_LENGTH;
  if (sql.length > maxLength) refuse(`the query is ${sql.length} characters long; the limit is ${maxLength}`);
  const allowed = new Set(policy.tables);
  const rowFilters = policy.rowFilters ?? {};
  const tablesHint = `run_sql reads only the tables ${policy.tables.join(', ')} (database ${policy.database}); describe_schema lists their columns`;
  const tokens = tokenize(sql);
  while (isOp(tokens[tokens.length - 1], ';')) tokens.pop();
  if (tokens.length === 0) refuse('the query is empty: send one SELECT statement');

  const first = lower(tokens[0]);
  if (first !== 'select' && first !== 'with') {
    if (first && STATEMENT_WORDS.has(first)) refuse(`${first.toUpperCase()} statements are not allowed: run_sql runs one read-only SELECT (or WITH … SELECT)`);
    refuse('the query must start with SELECT or WITH: run_sql runs one read-only SELECT');
  }

  // Names the query itself declares: CTEs (renamed), and aliases, implicit aliases and lambda
  // parameters (the first part of an a.b expression must be one of these).
  const ctes = new Set<string>();
  const declared = new Set<string>([policy.database, ...policy.tables]);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const prev = tokens[i - 1];
    if (isName(t) && lower(tokens[i + 1]) === 'as' && isOp(tokens[i + 2], '(') && ['select', 'with'].includes(lower(tokens[i + 3]) ?? '')) {
      if (lower(prev) === 'with' || lower(prev) === 'recursive' || isOp(prev, ',')) ctes.add(t.text);
    }
    const afterOperand = (isName(prev) && !EXPRESSION_STARTERS.has(lower(prev) ?? '')) || isOp(prev, ')') || isOp(prev, ']');
    if (isName(t) && afterOperand && !isOp(tokens[i + 1], '(') && !isOp(tokens[i - 2], '.')) declared.add(t.text);
    if (isName(t) && isOp(tokens[i + 1], '->')) declared.add(t.text);
    if (isOp(t, '->') && isOp(prev, ')')) {
      for (let j = i - 2; j >= 0 && !isOp(tokens[j], '('); j--) if (isName(tokens[j])) declared.add(tokens[j]!.text);
    }
  }
  for (const c of ctes) declared.add(c);

  const out: Token[] = [];
  const usedTables = new Set<string>();
  let depth = 0;
  /** Per depth: are we in a FROM list (where commas separate tables)? */
  const inFrom: boolean[] = [false];
  /** Per depth: is this the argument list of a function that takes FROM (`extract(day FROM t)`)? */
  const inCall: boolean[] = [false];

  /**
   * Pushes a read of `table`: the qualified name, or for a filtered table a subquery that filters
   * first, aliased to the table's own name unless the query gives one (`FINAL` after it is
   * dropped: every read is FINAL already). Returns the next index.
   */
  const pushTable = (table: string, pos: number, j: number, allowAlias: boolean, as?: Token[]): number => {
    const qualified: Token[] = as ?? [{ kind: 'quoted', text: policy.database, pos }, { kind: 'op', text: '.', pos }, { kind: 'quoted', text: table, pos }];
    usedTables.add(table);
    const filter = rowFilters[table];
    if (filter === undefined) {
      out.push(...qualified);
      return j;
    }
    out.push({ kind: 'op', text: '(', pos }, { kind: 'word', text: 'SELECT', pos }, { kind: 'op', text: '*', pos }, { kind: 'word', text: 'FROM', pos }, ...qualified);
    out.push({ kind: 'word', text: 'WHERE', pos }, { kind: 'op', text: '(', pos }, ...tokenize(filter), { kind: 'op', text: ')', pos }, { kind: 'op', text: ')', pos });
    if (lower(tokens[j]) === 'sample') refuse(`SAMPLE is not available on ${table} for your identity`);
    if (lower(tokens[j]) === 'final') j++;
    const next = tokens[j];
    const hasAlias = lower(next) === 'as' || (isName(next) && !(next.kind === 'word' && AFTER_TABLE_WORDS.has(next.text.toLowerCase())));
    if (allowAlias && !hasAlias) out.push({ kind: 'word', text: 'AS', pos }, { kind: 'quoted', text: table, pos });
    if (allowAlias && hasAlias) {
      // `t AS a FINAL` / `t a FINAL`: the alias stays, the FINAL goes.
      const aliasAt = lower(next) === 'as' ? j + 1 : j;
      if (lower(tokens[aliasAt + 1]) === 'final') finalToSkip.add(aliasAt + 1);
      if (lower(tokens[aliasAt + 1]) === 'sample') refuse(`SAMPLE is not available on ${table} for your identity`);
    }
    return j;
  };
  const finalToSkip = new Set<number>();

  /** Reads a table reference at tokens[i]; pushes its rewrite; returns the next index. */
  const tableRef = (i: number, where: string, allowAlias: boolean): number => {
    const t = tokens[i];
    if (isOp(t, '(')) {
      if (!['select', 'with'].includes(lower(tokens[i + 1]) ?? '')) refuse(`${where} ( … ) must hold a subquery starting with SELECT or WITH`);
      return i; // the subquery is checked token by token like the rest
    }
    if (!isName(t)) refuse(`expected a table name after ${where}${t ? ` at position ${t.pos}` : ''}; ${tablesHint}`);
    const name = t as Extract<Token, { kind: 'word' | 'quoted' }>;
    let j = i + 1;
    let db: string | undefined;
    let table = name.text;
    if (isOp(tokens[j], '.')) {
      const second = tokens[j + 1];
      if (!isName(second)) refuse(`expected a table name after ${shown(name)}. at position ${tokens[j]!.pos}`);
      db = name.text;
      table = (second as Extract<Token, { kind: 'word' | 'quoted' }>).text;
      j += 2;
      if (isOp(tokens[j], '.')) refuse(`${db}.${table}. : a table is named <table> or ${policy.database}.<table>`);
    }
    if (isOp(tokens[j], '(')) refuse(`table function ${table}() is not allowed: ${tablesHint}`);
    if (db !== undefined) {
      if (FORBIDDEN_NAMES.has(db.toLowerCase())) refuse(`${db}.${table}: system tables and other databases are not available; ${tablesHint}`);
      if (db !== policy.database) refuse(`database ${db} is not available: ${tablesHint}`);
      if (!allowed.has(table)) refuse(`table ${db}.${table} is not available: ${tablesHint}`);
      return pushTable(table, name.pos, j, allowAlias, [name, tokens[i + 1]!, tokens[i + 2]!]);
    }
    if (ctes.has(table)) {
      out.push({ kind: 'quoted', text: CTE_PREFIX + table, pos: name.pos });
      const next = tokens[j];
      const hasAlias = lower(next) === 'as' || (isName(next) && !(next.kind === 'word' && AFTER_TABLE_WORDS.has(next.text.toLowerCase())));
      if (allowAlias && !hasAlias) out.push({ kind: 'word', text: 'AS', pos: name.pos }, { kind: 'quoted', text: table, pos: name.pos });
      return j;
    }
    if (FORBIDDEN_NAMES.has(table.toLowerCase())) refuse(`${table}: system tables and other databases are not available; ${tablesHint}`);
    if (!allowed.has(table)) refuse(`table ${table} is not available: ${tablesHint}`);
    return pushTable(table, name.pos, j, allowAlias);
  };

  let i = 0;
  while (i < tokens.length) {
    const t = tokens[i]!;
    const lw = lower(t);
    const next = tokens[i + 1];

    if (isOp(t, ';')) refuse(`only one statement is allowed: found ';' at position ${t.pos}`);
    if (finalToSkip.has(i)) {
      i++;
      continue;
    }
    if (isOp(t, '(')) {
      depth++;
      if (depth > MAX_DEPTH) refuse(`parentheses nest deeper than ${MAX_DEPTH}`);
      inFrom[depth] = false;
      inCall[depth] = FROM_FUNCTIONS.has(lower(tokens[i - 1]) ?? '') && !['select', 'with'].includes(lower(next) ?? '');
    } else if (isOp(t, ')')) {
      depth--;
      if (depth < 0) refuse(`unbalanced ')' at position ${t.pos}`);
    }

    if (isName(t)) {
      const name = t.text;
      const nameLower = name.toLowerCase();
      if (FORBIDDEN_NAMES.has(nameLower)) refuse(`${shown(t)}: system tables and other databases are not available; ${tablesHint}`);
      if (RESERVED_PREFIXES.some((p) => nameLower.startsWith(p))) refuse(`${shown(t)}: names starting with ${RESERVED_PREFIXES.join(' or ')} are reserved`);
      if (t.kind === 'quoted' && (/settings/i.test(name) || !/^[A-Za-z0-9_ .,:%()+<>=!-]{1,128}$/.test(name) || name.includes('--'))) {
        refuse(`quoted name ${shown(t)} at position ${t.pos}: quoted names may hold letters, digits, spaces and _ .,:%()+<>=!- (up to 128)`);
      }
      if (t.kind === 'word' && CLAUSE_WORDS[nameLower] && !(nameLower === 'format' && isOp(next, '('))) refuse(CLAUSE_WORDS[nameLower]);
      if (t.kind === 'word' && nameLower !== 'settings' && nameLower.includes('settings')) {
        refuse(`${name}: names containing "settings" are not allowed (the executed text may not contain that word outside strings)`);
      }
      if (t.kind === 'word' && STATEMENT_WORDS.has(nameLower) && !isOp(next, '(') && i > 0) {
        refuse(`${name.toUpperCase()} is not allowed: run_sql runs one read-only SELECT (quote a column alias of that name with backticks)`);
      }
      // Server state behind a bare name (`SELECT database`, `SELECT CURRENT_USER`).
      if (!isOp(next, '(') && !isOp(next, '.') && !isOp(tokens[i - 1], '.') && lower(tokens[i - 1]) !== 'as' && SERVER_NAMES.has(nameLower) && name !== 'user') {
        refuse(`${shown(t)}: this name reads server state; run_sql reads the read-model tables only (${tablesHint})`);
      }
      if (nameLower === 'prewhere' && t.kind === 'word' && Object.keys(rowFilters).length > 0) {
        refuse('PREWHERE is not allowed for your identity (it would run before the row filter): use WHERE');
      }
      // `in(x, t)` as a function (the IN operator, `x IN (…)`, has an operand before it).
      if (nameLower === 'in' && isOp(next, '(') && !isInOperator(tokens, i)) {
        refuse(`function in() is not allowed: use the IN operator (x IN (SELECT … FROM table)); ${tablesHint}`);
      }
      // Function calls.
      if (isOp(next, '(')) {
        const why = DENIED_CALLS.get(nameLower) ?? (isDictFunction(nameLower) ? 'reads dictionaries' : undefined);
        if (why) refuse(`function ${name}() is not allowed: it ${why}; ${tablesHint}`);
        if (isOp(tokens[i - 1], '.')) refuse(`qualified function names (…${name}()) are not allowed`);
      }
      // a.b and a.b.c in expressions: the first part must be something this query names.
      if (isOp(next, '.') && !isOp(tokens[i - 1], '.')) {
        let parts = 1;
        while (isOp(tokens[i + 2 * parts - 1], '.') && tokens[i + 2 * parts]) parts++;
        const second = tokens[i + 2];
        if (!declared.has(name)) refuse(`${name}.…: ${name} is not a table, alias or CTE of this query; ${tablesHint}`);
        if (name === policy.database && parts === 2) {
          refuse(`${name}.${isName(second) ? shown(second) : '…'}: a table is read in FROM, JOIN or IN, not as a value; a column is ${policy.database}.table.column`);
        }
        if (parts >= 3 && !(name === policy.database && isName(second) && allowed.has(second.text))) {
          refuse(`${name}.….…: a column is named column, table.column or ${policy.database}.table.column`);
        }
      }
    }

    // A CTE's definition: renamed like its references.
    if (isName(t) && ctes.has(t.text) && lower(next) === 'as' && isOp(tokens[i + 2], '(')) {
      const prev = tokens[i - 1];
      if (lower(prev) === 'with' || lower(prev) === 'recursive' || isOp(prev, ',')) {
        out.push({ kind: 'quoted', text: CTE_PREFIX + t.text, pos: t.pos });
        i++;
        continue;
      }
    }

    // Where tables are read: FROM, JOIN, a FROM list's commas, and IN <table>.
    if ((lw === 'from' && !inCall[depth]) || lw === 'join') {
      const isArrayJoin = lw === 'join' && (lower(tokens[i - 1]) === 'array' || (lower(tokens[i - 1]) === 'left' && lower(tokens[i - 2]) === 'array'));
      out.push(t);
      if (isArrayJoin) {
        inFrom[depth] = false;
        i++;
        continue;
      }
      inFrom[depth] = true;
      i = tableRef(i + 1, lw.toUpperCase(), true);
      continue;
    }
    if (isOp(t, ',') && inFrom[depth]) {
      out.push(t);
      i = tableRef(i + 1, 'a comma in FROM', true);
      continue;
    }
    if (lw === 'using' && !isOp(next, '(')) inFrom[depth] = false;
    if (lw && FROM_END_WORDS.has(lw)) inFrom[depth] = false;
    if (lw === 'in' && !inCall[depth]) {
      out.push(t);
      if (isName(next) && !isOp(tokens[i + 2], '(')) {
        i = tableRef(i + 1, 'IN', false);
        continue;
      }
      // `x IN (name)`, `x IN ((db.name))`: ClickHouse reads the table `name`.
      let open = 0;
      while (isOp(tokens[i + 1 + open], '(')) open++;
      const at = i + 1 + open;
      const nameEnd = isOp(tokens[at + 1], '.') ? at + 3 : at + 1;
      if (open > 0 && isName(tokens[at]) && isOp(tokens[nameEnd], ')')) {
        for (let k = 0; k < open; k++) {
          out.push(tokens[i + 1 + k]!);
          depth++;
          if (depth > MAX_DEPTH) refuse(`parentheses nest deeper than ${MAX_DEPTH}`);
          inFrom[depth] = false;
          inCall[depth] = false;
        }
        i = tableRef(at, 'IN (', false);
        continue;
      }
      i++;
      continue;
    }

    out.push(t);
    i++;
  }
  if (depth !== 0) refuse('unbalanced parentheses: a "(" is not closed');
  return { sql: render(out), tables: [...usedTables].sort() };
}

// ---- rendering ---------------------------------------------------------------------------------------

const hex = (c: string) => {
  const code = c.charCodeAt(0);
  return `\\x${(isRawByte(code) ? code - RAW_BYTE_BASE : code).toString(16).padStart(2, '0').toUpperCase()}`;
};

/**
 * A string value as a ClickHouse literal that holds no `;`, `#`, `$`, `--`, `/*`, `*\/` and no
 * word "settings" (those are escaped as \xHH), so `guardStatementText` can check the whole text.
 */
export function stringLiteral(value: string): string {
  const settingsAt = new Set<number>();
  for (const m of value.matchAll(/settings/gi)) settingsAt.add(m.index);
  let out = "'";
  for (let k = 0; k < value.length; k++) {
    const c = value[k]!;
    const code = c.charCodeAt(0);
    const pairWith = (a: string, b: string) => (c === a && (value[k + 1] === b || value[k - 1] === b));
    if (c === '\\') out += '\\\\';
    else if (c === "'") out += "\\'";
    else if (code < 0x20 || code === 0x7f || isRawByte(code) || ';#$'.includes(c) || settingsAt.has(k)) out += hex(c);
    else if (pairWith('-', '-') || pairWith('/', '*') || pairWith('*', '/')) out += hex(c);
    else out += c;
  }
  return `${out}'`;
}

function render(tokens: Token[]): string {
  return tokens
    .map((t) => {
      switch (t.kind) {
        case 'string':
          return stringLiteral(t.text);
        case 'quoted':
          return `\`${t.text}\``;
        default:
          return t.text;
      }
    })
    .join(' ');
}

// ---- execution ---------------------------------------------------------------------------------------

export interface RunSqlLimits {
  /** Rows returned at most (default 1000). */
  maxRows: number;
  /** Bytes of JSON rows returned at most (default 256 KiB). */
  maxBytes: number;
  /** ClickHouse max_execution_time, seconds (at most 30). */
  maxExecutionTimeS: number;
  /** ClickHouse max_memory_usage, bytes. */
  maxMemoryBytes: number;
  /** max_execution_time for identities that are not admins, seconds (at most maxExecutionTimeS). */
  userMaxExecutionTimeS: number;
  /** run_sql queries one non-admin identity may have in flight at once. */
  userConcurrency: number;
  /** run_sql queries one admin may have in flight at once. */
  adminConcurrency: number;
  /**
   * ClickHouse max_threads of one run_sql query: half the cores by default, so a heavy query
   * leaves the rest to the purpose-built tools of every other identity (the embedded engine
   * shares this process's cores).
   */
  maxThreads: number;
}

export const DEFAULT_RUN_SQL_LIMITS: RunSqlLimits = {
  maxRows: 1000,
  maxBytes: 256 * 1024,
  maxExecutionTimeS: 30,
  maxMemoryBytes: 1024 ** 3,
  userMaxExecutionTimeS: 10,
  userConcurrency: 1,
  adminConcurrency: 3,
  maxThreads: Math.max(1, Math.floor(availableParallelism() / 2)),
};

/** Column names the wrapper adds (and the tool removes): running in-memory size and total rows. */
export const BYTES_COLUMN = '__jobscribe_bytes';
export const ROWS_COLUMN = '__jobscribe_rows';
const ORDER_COLUMN = '__jobscribe_n';

/**
 * Refuses text that could carry a second statement, a comment that swallows the wrapper, a
 * heredoc, or a SETTINGS clause of its own. Validated SQL always passes (its strings are escaped
 * by `stringLiteral`, its names cannot hold these); this is the execution layer's own check.
 */
export function guardStatementText(sql: string): string | undefined {
  if (sql.includes(';')) return "';' is not allowed: one statement only";
  if (/--|\/\*|\*\/|#/.test(sql)) return 'comments are not allowed in the executed text';
  if (sql.includes('$')) return "'$' (heredoc) is not allowed";
  if (/settings/i.test(sql)) return 'a SETTINGS clause is not allowed (it would lift readonly in a subquery)';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(sql)) return 'control characters are not allowed';
  return undefined;
}

/**
 * Row filters ClickHouse applies wherever a table is read (`additional_table_filters`: joins,
 * subqueries, CTEs, IN sets alike), by qualified table name → boolean SQL expression. Ours,
 * never the agent's: this is how a plain user's run_sql sees only their own rows.
 */
export type RowFilters = Readonly<Record<string, string>>;

/** The read-only SETTINGS clause of every run_sql statement. Values are ours, never the agent's. */
export function runSqlSettingsClause(limits: RunSqlLimits, rowFilters: RowFilters = {}): string {
  const filters = Object.entries(rowFilters);
  const clause = settingsClause({
    readonly: 1,
    allow_ddl: 0,
    allow_introspection_functions: 0,
    max_execution_time: Math.min(30, limits.maxExecutionTimeS),
    timeout_overflow_mode: 'throw',
    max_memory_usage: limits.maxMemoryBytes,
    max_threads: limits.maxThreads,
    max_result_rows: limits.maxRows + 1,
    // chDB 3.4 did not enforce max_result_bytes on these results (measured); the running byte
    // count below is what bounds them. Kept as a backstop for ClickHouse servers.
    max_result_bytes: limits.maxBytes * 64,
    result_overflow_mode: 'throw',
    output_format_json_quote_64bit_integers: 1,
    output_format_json_quote_denormals: 1,
    // Every table read as if FINAL: a replay writes a range again under new batch boundaries,
    // and its physical duplicate rows stay until ClickHouse merges them; answers never count them.
    final: 1,
  });
  if (filters.length === 0) return clause;
  // Filtered identities: no condition moves to PREWHERE (it runs before any filter), and AND/OR/if
  // never evaluate a later argument on a row an earlier one rejected (a pushed-down condition
  // merged after the row filter only ever sees rows that passed it).
  const ordered = settingsClause({ optimize_move_to_prewhere: 0, short_circuit_function_evaluation: 'force_enable' }).replace(/^\s*SETTINGS\s+/i, '');
  return `${clause}, ${ordered}, additional_table_filters = {${filters.map(([table, expr]) => `${sqlStringLiteral(table)}: ${sqlStringLiteral(expr)}`).join(', ')}}`;
}

/**
 * The statement that runs: the query as a subquery (FORMAT / INTO OUTFILE inside are syntax
 * errors), at most maxRows + 1 rows, a running in-memory byte count that drops rows once it passes
 * twice the byte cap (so an oversized answer is cut in ClickHouse, not in this process), the total
 * row count, and the read-only SETTINGS clause (with the identity's row filters). Throws when
 * `guardStatementText` refuses the text.
 */
export function executionSql(sql: string, limits: RunSqlLimits, rowFilters: RowFilters = {}): string {
  const problem = guardStatementText(sql);
  if (problem) throw new Error(`run_sql execution layer refused the statement: ${problem}`);
  return [
    // Names ClickHouse would answer with server state where no column of that name is in scope.
    `WITH ${SERVER_NAME_SHADOWS.map((n) => `NULL AS \`${n}\``).join(', ')}`,
    // The query's own row order, numbered where it is still the query's: ClickHouse keeps no
    // subquery's order by itself (measured: a window over the rows moved the first one last).
    `SELECT * EXCEPT (${ORDER_COLUMN}) FROM (`,
    `SELECT *, sum(byteSize(*)) OVER (ORDER BY ${ORDER_COLUMN} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ${BYTES_COLUMN}, count() OVER () AS ${ROWS_COLUMN}`,
    `FROM (SELECT *, rowNumberInAllBlocks() AS ${ORDER_COLUMN} FROM (`,
    sql,
    `) LIMIT ${limits.maxRows + 1})`,
    `) WHERE ${BYTES_COLUMN} <= ${limits.maxBytes * 2} ORDER BY ${ORDER_COLUMN}`,
    runSqlSettingsClause(limits, rowFilters),
  ].join('\n');
}

// ---- caps ---------------------------------------------------------------------------------------------

/** Most bytes of column names and types (their JSON) an answer may carry: `tuple(*)` alone is ~2 KB. */
export const MAX_COLUMNS_BYTES = 16_384;

/** Why an answer's column metadata is too large to ship, or undefined. Pure. */
export function columnsTooLarge(columns: ReadonlyArray<{ name: string; type: string }>): string | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(columns));
  if (bytes <= MAX_COLUMNS_BYTES) return undefined;
  return `the answer's ${columns.length} columns take ${bytes} bytes of names and types (at most ${MAX_COLUMNS_BYTES}): select fewer columns, name long expressions with AS, or select fields instead of tuple(*)`;
}

export interface CappedRows {
  rows: Array<Record<string, unknown>>;
  truncated: boolean;
  /** Why rows were left out, for the agent. */
  truncated_reason?: string;
}

/**
 * Applies the caps to the rows ClickHouse returned (wrapper columns still in them): at most
 * `maxRows` rows and `maxBytes` bytes of row JSON (UTF-8). `rowsBeforeLimit` is the JSON
 * format's rows_before_limit_at_least (the inner LIMIT's input).
 */
export function capResult(
  received: Array<Record<string, unknown>>,
  maxRows: number,
  maxBytes: number,
  rowsBeforeLimit = 0,
): CappedRows {
  // Rows the query had (at most maxRows + 1): the wrapper's count, or when ClickHouse dropped
  // every row for size, its rows_before_limit_at_least.
  const totalRows = received.length > 0 ? Number(received[0]![ROWS_COLUMN]) : Math.min(rowsBeforeLimit, maxRows + 1);
  const rows: Array<Record<string, unknown>> = [];
  let bytes = 2; // []
  let byBytes = received.length < totalRows; // ClickHouse already dropped rows past 2× the byte cap
  for (const r of received) {
    if (rows.length >= maxRows) break;
    const { [BYTES_COLUMN]: _b, [ROWS_COLUMN]: _n, ...row } = r;
    const size = Buffer.byteLength(JSON.stringify(row)) + 1;
    if (bytes + size > maxBytes) {
      byBytes = true;
      break;
    }
    bytes += size;
    rows.push(row);
  }
  const byRows = totalRows > maxRows && rows.length >= maxRows;
  if (!byRows && !byBytes) return { rows, truncated: false };
  const reasons: string[] = [];
  if (byRows) reasons.push(`more than ${maxRows} rows`);
  if (byBytes) reasons.push(`more than ${maxBytes} bytes of rows`);
  return {
    rows,
    truncated: true,
    truncated_reason: `the answer has ${reasons.join(' and ')}; the first ${rows.length} rows are returned. Aggregate, filter or add LIMIT/ORDER BY to see what matters`,
  };
}
