/**
 * `describe_schema` (and the `jobscribe://schema` resource): the tables run_sql may read, their
 * columns with types and meanings, the rules of run_sql and example queries.
 */
import { z } from 'zod';

export const DescribeSchemaInputSchema = z.strictObject({
  table: z
    .string()
    .optional()
    .describe('only this table (jobs, job_events, dead_letters, actions); omit for all'),
});
export type DescribeSchemaInput = z.infer<typeof DescribeSchemaInputSchema>;

export const SchemaColumnSchema = z.object({
  name: z.string(),
  type: z.string().describe('ClickHouse type'),
  description: z.string(),
});

export const SchemaTableSchema = z.object({
  name: z.string(),
  description: z.string(),
  columns: z.array(SchemaColumnSchema),
});

export const SchemaExampleSchema = z.object({ question: z.string(), sql: z.string() });

export const SchemaDocSchema = z.object({
  database: z.string().describe('the database bare table names resolve to'),
  tables: z.array(SchemaTableSchema),
  rules: z.array(z.string()).describe('what run_sql accepts and how it answers'),
  examples: z.array(SchemaExampleSchema),
});
export type SchemaDoc = z.infer<typeof SchemaDocSchema>;
