/**
 * `describe_schema`: the tables run_sql may read, their columns (type and meaning), the run_sql
 * rules and example queries (mcp/schemaDoc.ts builds it), for the asking identity: the tables
 * its run_sql may read, and a rule saying which rows when they are filtered (runSql.ts sqlScope).
 */
import type { McpServer } from '@modelcontextprotocol/server';
import { DescribeSchemaInputSchema, SchemaDocSchema, type SchemaDoc } from '../../schemas/tools/describeSchema.js';
import { ToolInputError, runTool, toolResult } from '../results.js';
import type { RunSqlLimits } from '../safeSql.js';
import { describeSchema } from '../schemaDoc.js';
import type { QueryDeps } from '../sql.js';
import { RUN_SQL_TABLES, sqlScope } from './runSql.js';

/** The schema document as the asking identity's run_sql sees it: its tables, and whose rows. */
export async function schemaDocFor(deps: QueryDeps, limits?: RunSqlLimits): Promise<SchemaDoc> {
  const scope = sqlScope(deps.identity, deps.jobDetails, deps.database);
  const tables = 'refused' in scope ? RUN_SQL_TABLES : scope.tables;
  const doc = await describeSchema(deps, limits);
  doc.tables = doc.tables.filter((t) => tables.includes(t.name));
  if ('refused' in scope) doc.rules.unshift(scope.refused);
  else if (Object.keys(scope.rowFilters).length > 0) {
    const own = Object.keys(scope.rowFilters).map((t) => t.slice(deps.database.length + 1));
    doc.rules.unshift(`your queries see only your own rows of ${own.join(', ')} (${deps.identity.subject}): filters apply wherever those tables are read`);
  }
  return doc;
}

export function registerDescribeSchema(server: McpServer, deps: QueryDeps, limits?: RunSqlLimits): void {
  server.registerTool(
    'describe_schema',
    {
      title: 'Describe the SQL schema',
      description: 'Tables, columns (type and meaning), rules and example queries for run_sql.',
      inputSchema: DescribeSchemaInputSchema,
      outputSchema: SchemaDocSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps, 'describe_schema', async () => {
        const doc = await schemaDocFor(deps, limits);
        const tables = doc.tables.map((t) => t.name);
        if (args.table !== undefined && !tables.includes(args.table)) {
          throw new ToolInputError(`table: '${args.table}' is not one of ${tables.join(', ')}`);
        }
        if (args.table !== undefined) {
          doc.tables = doc.tables.filter((t) => t.name === args.table);
          if (doc.tables.length === 0) throw new ToolInputError(`table: ${args.table} does not exist yet in ${deps.database}`);
        }
        return toolResult(doc);
      }),
  );
}
