/**
 * Flux's compact id and host notations, as R and the journal spell them: RFC 22 idsets
 * ("0-3,7") and RFC 29 hostlists ("node[0-2,5]"). Pure.
 */

/** RFC 22 idset ("0-3,7", optionally in brackets) → its ids. */
export function idset(v: unknown): number[] {
  if (typeof v !== 'string') return [];
  const out: number[] = [];
  for (const part of v.replace(/^\[|\]$/g, '').split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}

/** RFC 29 hostlist ("node[0-2,5]", "a1,b[07-09]") → host names, zero padding kept. */
export function expandHostlist(hostlist: string): string[] {
  const out: string[] = [];
  // Split at the commas outside brackets.
  for (const host of hostlist.match(/(?:[^,[]|\[[^\]]*\])+/g) ?? []) {
    const m = /^([^[]*)\[([^\]]*)\](.*)$/.exec(host.trim());
    if (!m) {
      if (host.trim()) out.push(host.trim());
      continue;
    }
    const [, prefix = '', ranges = '', suffix = ''] = m;
    for (const range of ranges.split(',')) {
      const [lo = '', hi = lo] = range.trim().split('-');
      for (let i = Number(lo); i <= Number(hi); i++) out.push(prefix + String(i).padStart(lo.length, '0') + suffix);
    }
  }
  return out;
}
