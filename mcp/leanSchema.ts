/**
 * Tool definitions go into every agent's context on every `tools/list`, so their JSON Schemas
 * should say what an agent needs and nothing else. zod's conversion adds noise that costs tokens
 * and informs nobody: `$schema` on every root, ±2^53 bounds on every integer, a ~400-character
 * pattern next to `format: date-time`, on output objects `additionalProperties: false` and
 * `required` (server-side guarantees that the structured result shows anyway; nullable fields
 * still say `null`), and `anyOf` with a null branch where `type: [T, "null"]` says the same. Repeated output shapes are shared through `$defs` by giving their zod schema
 * a `.meta({ id })` (see QueueCountsSchema).
 *
 * `leanJsonSchema` strips those (pure); `leanToolSchemas(server)` makes every tool registered on
 * a server afterwards publish lean schemas, whoever registers it. Validation is untouched: the
 * zod schemas still check arguments and structured results.
 */
import type { McpServer } from '@modelcontextprotocol/server';

type Json = { [key: string]: unknown };
const isEmptyObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0;
const SAFE = Number.MAX_SAFE_INTEGER;

export function leanJsonSchema(schema: unknown, io: 'input' | 'output', root = true): unknown {
  if (Array.isArray(schema)) return schema.map((s) => leanJsonSchema(s, io, false));
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Json = {};
  const s = schema as Json;
  for (const [key, value] of Object.entries(s)) {
    if (root && key === '$schema') continue;
    if ((key === 'minimum' && value === -SAFE) || (key === 'maximum' && value === SAFE)) continue;
    if (key === 'pattern' && typeof s.format === 'string') continue;
    if (io === 'output' && key === 'additionalProperties' && (value === false || isEmptyObject(value))) continue;
    if (io === 'output' && key === 'required' && Array.isArray(value)) continue;
    // Property names are data, not schema keywords: recurse into their schemas only.
    if (key === 'properties' && value && typeof value === 'object') {
      out[key] = Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, leanJsonSchema(v, io, false)]));
      continue;
    }
    out[key] = leanJsonSchema(value, io, false);
  }
  return collapseNullable(out);
}

/**
 * `anyOf: [{ type: T[, format] }, { type: 'null' }]` (zod's `.nullable()`) as the equivalent
 * `type: [T, 'null'][, format]`: a third of the characters, on every nullable field.
 */
function collapseNullable(s: Json): Json {
  const branches = s.anyOf;
  if (!Array.isArray(branches) || branches.length !== 2) return s;
  const isNull = (b: unknown) => isPlain(b) && Object.keys(b).length === 1 && b.type === 'null';
  const other: unknown = branches.find((b) => !isNull(b));
  if (!branches.some(isNull) || !isPlain(other) || typeof other.type !== 'string') return s;
  if (!Object.keys(other).every((k) => k === 'type' || k === 'format') || 'type' in s || 'format' in s) return s;
  const { anyOf: _anyOf, ...rest } = s;
  return { ...rest, type: [other.type, 'null'], ...(other.format !== undefined && { format: other.format }) };
}
const isPlain = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

interface JsonSchemaConverter {
  input(options: unknown): unknown;
  output(options: unknown): unknown;
}
interface StandardWithJson {
  '~standard': { jsonSchema?: JsonSchemaConverter } & Record<string, unknown>;
}

/** Lean JSON Schemas already converted, per original schema, by `${io} ${JSON.stringify(options)}`. */
const LEAN_CACHE = new WeakMap<object, Map<string, unknown>>();

/** The same schema (validation and types unchanged) publishing lean JSON Schema. */
export function leanSchema<S>(schema: S): S {
  const std = (schema as unknown as StandardWithJson)['~standard'];
  const json = std.jsonSchema;
  if (!json) return schema;
  // tools/list converts every tool's schemas on every call: convert once per (io, options), hand out copies.
  const cached = (io: 'input' | 'output', o: unknown): unknown => {
    let bySchema = LEAN_CACHE.get(schema as object);
    if (!bySchema) LEAN_CACHE.set(schema as object, (bySchema = new Map<string, unknown>()));
    const key = `${io} ${JSON.stringify(o) ?? ''}`;
    if (!bySchema.has(key)) bySchema.set(key, leanJsonSchema(json[io](o), io));
    return structuredClone(bySchema.get(key));
  };
  const lean = {
    ...std,
    jsonSchema: {
      input: (o: unknown) => cached('input', o),
      output: (o: unknown) => cached('output', o),
    },
  };
  return new Proxy(schema as object, {
    get: (target, prop, receiver): unknown => (prop === '~standard' ? lean : (Reflect.get(target, prop, receiver) as unknown)),
  }) as S;
}

/** From now on, every `registerTool` on `server` publishes lean input and output schemas. */
export function leanToolSchemas(server: McpServer): void {
  const register = server.registerTool.bind(server) as (name: string, config: Record<string, unknown>, cb: unknown) => unknown;
  (server as unknown as { registerTool: typeof register }).registerTool = (name, config, cb) =>
    register(
      name,
      {
        ...config,
        ...(config.inputSchema !== undefined && { inputSchema: leanSchema(config.inputSchema) }),
        ...(config.outputSchema !== undefined && { outputSchema: leanSchema(config.outputSchema) }),
      },
      cb,
    );
}
