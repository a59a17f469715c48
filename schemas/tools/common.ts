/**
 * Pieces shared by the MCP tool contracts: argument schemas whose error messages tell an agent
 * exactly what to send, the unified job-state vocabulary, and time values (ISO-8601 out; ISO or
 * relative like "-24h" in). Imports only zod and ids, like every file in schemas/.
 */
import { z } from 'zod';
import { ClusterIdSchema, parseJobId } from '../ids.js';

/** An integer. (mcp/leanSchema.ts drops zod's default ±2^53 bounds from the published JSON Schema.) */
export const Int = z.number().int();

/** Unified job states (one vocabulary for every scheduler); the same words as `jobs.state`. */
export const JOB_STATES = ['pending', 'running', 'completed', 'failed', 'canceled', 'timeout'] as const;
export const JobStateSchema = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobStateSchema>;

/** A cluster name; its pattern is checked but not published (cluster_status lists the names). */
export const ClusterNameSchema = ClusterIdSchema.meta({ pattern: undefined });
export const ClusterArgSchema = ClusterNameSchema.describe('cluster name; omit for all clusters');

/** A job id argument: decimal, Flux f58 (ƒRcvRGc7 or fRcvRGc7) or 0x hex; never a JSON number. */
export const JobIdArgSchema = z
  .string({
    error: (iss) =>
      iss.input === undefined
        ? 'required: a job id such as "1234567" or "ƒRcvRGc7"'
        : 'must be a string such as "1234567" or "ƒRcvRGc7" (job ids exceed 2^53, so never a JSON number)',
  })
  .refine((s) => parseJobId(s) !== undefined, {
    error: (iss) => `'${String(iss.input)}' is not a decimal or f58 Flux job id (examples: "1234567", "ƒRcvRGc7")`,
  })
  .describe('Job id: decimal ("1234567") or Flux f58 ("ƒRcvRGc7"; ASCII "fRcvRGc7" works too).');

/**
 * Output times (no description: agents know date-time): UTC ISO-8601 with the stored fractional
 * seconds, e.g. 2024-05-01T10:00:00.123456Z. `format: date-time` says it all; mcp/leanSchema.ts
 * drops zod's ~400-character pattern next to it.
 */
export const IsoTimeSchema = z.iso.datetime();

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const RELATIVE_RE = /^-\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 } as const;

/**
 * A time argument → microseconds since the epoch, or undefined when it is not one.
 * Accepts ISO-8601 (a date, or date and time; no zone means UTC), "now", or a relative time in
 * the past: "-90s", "-30m", "-24h", "-7d", "-2w" (relative to `nowMicros`).
 */
export function parseTimeArg(input: string, nowMicros: number): number | undefined {
  const s = input.trim();
  if (s === 'now') return nowMicros;
  const rel = RELATIVE_RE.exec(s);
  if (rel) return nowMicros - Math.round(Number(rel[1]) * UNIT_SECONDS[rel[2] as keyof typeof UNIT_SECONDS] * 1e6);
  const m = ISO_RE.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec));
  const check = new Date(ms);
  if (
    check.getUTCFullYear() !== Number(y) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    check.getUTCDate() !== Number(d) ||
    check.getUTCHours() !== Number(h) ||
    check.getUTCMinutes() !== Number(mi) ||
    check.getUTCSeconds() !== Number(sec)
  ) {
    return undefined;
  }
  let offsetMinutes = 0;
  if (zone && zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2) || '0');
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const micros = Number(frac.padEnd(6, '0').slice(0, 6) || '0');
  return (ms - offsetMinutes * 60_000) * 1000 + micros;
}

export const TimeArgSchema = z
  .string()
  .refine((s) => parseTimeArg(s, 0) !== undefined, {
    error: (iss) =>
      `'${String(iss.input)}' is not a time: use ISO-8601 ("2024-05-01T10:00:00Z", "2024-05-01") or a relative time like "-24h", "-30m", "-7d"`,
  });
