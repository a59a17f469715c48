import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/server';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { leanJsonSchema, leanSchema, leanToolSchemas } from '../../mcp/leanSchema.js';

const Out = z.object({ n: z.number().int(), at: z.iso.datetime(), nested: z.object({ m: z.number().int().min(0) }) });
const In = z.strictObject({ limit: z.number().int().min(1).max(200), pattern: z.string().regex(/^a+$/) });

describe('lean tool schemas', () => {
  it('drops $schema, ±2^53 bounds, date-time patterns and output additionalProperties/required, keeping real constraints', () => {
    const out = leanJsonSchema(Out['~standard'].jsonSchema.output({ target: 'draft-2020-12' }), 'output') as Record<string, any>;
    expect(out.$schema).toBeUndefined();
    expect(out.additionalProperties).toBeUndefined();
    expect(out.required).toBeUndefined();
    expect(out.properties.n).toEqual({ type: 'integer' });
    expect(out.properties.at).toEqual({ type: 'string', format: 'date-time' });
    expect(out.properties.nested.properties.m).toEqual({ type: 'integer', minimum: 0 });
    const inp = leanJsonSchema(In['~standard'].jsonSchema.input({ target: 'draft-2020-12' }), 'input') as Record<string, any>;
    expect(inp.additionalProperties).toBe(false);
    expect(inp.required).toEqual(['limit', 'pattern']);
    expect(inp.properties.limit).toEqual({ type: 'integer', minimum: 1, maximum: 200 });
    expect(inp.properties.pattern.pattern).toBe('^a+$');
  });

  it('writes a nullable field as type [T, "null"]; other unions stay as they are', () => {
    const S = z.object({
      code: z.number().int().nullable().describe('exit code'),
      at: z.iso.datetime().nullable(),
      either: z.union([z.string(), z.object({ k: z.string() })]).nullable(),
    });
    const out = leanJsonSchema(S['~standard'].jsonSchema.output({ target: 'draft-2020-12' }), 'output') as Record<string, any>;
    expect(out.properties.code).toEqual({ type: ['integer', 'null'], description: 'exit code' });
    expect(out.properties.at).toEqual({ type: ['string', 'null'], format: 'date-time' });
    expect(out.properties.either.anyOf.length).toBeGreaterThan(1); // not a lone typed branch: left alone
    expect(JSON.stringify(out.properties.either)).toContain('null');
    // Validation is zod's, unchanged.
    expect(S.safeParse({ code: null, at: null, either: null }).success).toBe(true);
  });

  it('keeps validation of the wrapped schema', async () => {
    const lean = leanSchema(In);
    expect((await lean['~standard'].validate({ limit: 5, pattern: 'aa' })).issues).toBeUndefined();
    expect((await lean['~standard'].validate({ limit: 500, pattern: 'b' })).issues?.length).toBe(2);
  });

  it('makes a server list lean definitions and still validate calls and results', async () => {
    const server = new McpServer({ name: 't', version: '1' });
    leanToolSchemas(server);
    server.registerTool('t', { description: 'd', inputSchema: In, outputSchema: Out }, async (args) => {
      const r = { n: args.limit, at: '2024-01-01T00:00:00Z', nested: { m: 1 } };
      return { content: [{ type: 'text', text: JSON.stringify(r) }], structuredContent: r };
    });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await server.connect(b);
    const client = new Client({ name: 'c', version: '1' });
    await client.connect(a);
    const { tools } = await client.listTools();
    expect(JSON.stringify(tools)).not.toMatch(/9007199254740991|\$schema|02-29/);
    expect((await client.callTool({ name: 't', arguments: { limit: 3, pattern: 'a' } })).structuredContent).toMatchObject({ n: 3 });
    const bad = await client.callTool({ name: 't', arguments: { limit: 0, pattern: 'a' } });
    expect(bad.isError).toBe(true);
    await client.close();
  });
});
