/**
 * `run_sql`: one read-only SELECT over the read-model tables, answered as typed columns and JSON
 * rows, capped in rows and bytes. The safety layers live in mcp/safeSql.ts.
 */
import { z } from 'zod';

export const RunSqlInputSchema = z.strictObject({
  sql: z
    .string({ error: 'required: one SELECT statement as a string' })
    .min(1, { error: 'required: one SELECT statement' })
    .describe(
      'One ClickHouse SELECT (or WITH … SELECT) over jobs, job_events, dead_letters, actions (see describe_schema). ' +
        'Use FINAL on these tables. No SETTINGS, FORMAT, table functions or system tables.',
    ),
  max_rows: z
    .number({ error: 'must be a whole number of rows > 0' })
    .int({ error: 'must be a whole number of rows > 0' })
    .positive({ error: 'must be a whole number of rows > 0' })
    .optional()
    .describe('return at most this many rows (lowers the server cap, default 1000)'),
  max_bytes: z
    .number({ error: 'must be a whole number of bytes > 0' })
    .int({ error: 'must be a whole number of bytes > 0' })
    .positive({ error: 'must be a whole number of bytes > 0' })
    .optional()
    .describe('return at most this many bytes of row JSON (lowers the server cap, default 262144)'),
});
export type RunSqlInput = z.infer<typeof RunSqlInputSchema>;

export const SqlColumnSchema = z.object({
  name: z.string(),
  type: z.string().describe('ClickHouse type, e.g. UInt64, Nullable(DateTime64(6, \'UTC\'))'),
});

export const RunSqlOutputSchema = z.object({
  columns: z.array(SqlColumnSchema),
  rows: z
    .array(z.record(z.string(), z.unknown()))
    .describe('one object per row, keyed by column name; 64-bit integers are strings'),
  row_count: z.number().int(),
  truncated: z.boolean().describe('true when the answer had more rows or bytes than returned'),
  truncated_reason: z.string().optional(),
  limits: z.object({ max_rows: z.number().int(), max_bytes: z.number().int(), max_execution_time_s: z.number() }),
  executed_sql: z.string().describe('the checked query as run (tables qualified, comments removed)'),
});
export type RunSqlOutput = z.infer<typeof RunSqlOutputSchema>;
