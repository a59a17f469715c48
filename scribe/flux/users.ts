/**
 * uid → user name for SourceEvent.user (Flux events carry only a userid). The default resolver
 * reads /etc/passwd once (node:fs) and caches it; an unknown uid resolves to undefined. Inject
 * another resolver (NSS/LDAP lookups, a fixed map in tests) through the source options.
 */
import { readFileSync } from 'node:fs';

export type UserResolver = (uid: number) => string | undefined;

/** Parses passwd(5) text: name:passwd:uid:gid:gecos:dir:shell. The first name for a uid wins. */
export function parsePasswd(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = Number(f[2]);
    if (f[0] && f.length >= 3 && Number.isInteger(uid) && f[2] !== '' && !out.has(uid)) out.set(uid, f[0]);
  }
  return out;
}

export function passwdUserResolver(path = '/etc/passwd'): UserResolver {
  let table: Map<number, string> | undefined;
  return (uid) => {
    if (!table) {
      try {
        table = parsePasswd(readFileSync(path, 'utf8'));
      } catch {
        table = new Map();
      }
    }
    return table.get(uid);
  };
}

export function mapUserResolver(names: Record<number, string> | Map<number, string>): UserResolver {
  const m = names instanceof Map ? names : new Map(Object.entries(names).map(([k, v]) => [Number(k), v]));
  return (uid) => m.get(uid);
}
