/**
 * `describe_schema`: the tables run_sql may read, their columns (type and meaning), the run_sql
 * rules and example queries (mcp/schemaDoc.ts builds it).
 */
import type { McpServer } from '@modelcontextprotocol/server';
import { DescribeSchemaInputSchema, SchemaDocSchema } from '../../schemas/tools/describeSchema.js';
import { ToolInputError, runTool, toolResult } from '../results.js';
import type { RunSqlLimits } from '../safeSql.js';
import { describeSchema } from '../schemaDoc.js';
import type { QueryDeps } from '../sql.js';
import { RUN_SQL_TABLES } from './runSql.js';

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
        if (args.table !== undefined && !RUN_SQL_TABLES.includes(args.table)) {
          throw new ToolInputError(`table: '${args.table}' is not one of ${RUN_SQL_TABLES.join(', ')}`);
        }
        const doc = await describeSchema(deps, limits);
        if (args.table !== undefined) {
          doc.tables = doc.tables.filter((t) => t.name === args.table);
          if (doc.tables.length === 0) throw new ToolInputError(`table: ${args.table} does not exist yet in ${deps.database}`);
        }
        return toolResult(doc);
      }),
  );
}
