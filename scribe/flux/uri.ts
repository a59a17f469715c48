/**
 * FLUX_URI → where to connect. Pure.
 *   local://<socket path>              the broker's local connector socket (e.g. local:///run/flux/local)
 *   ssh://[user@]host[:port]/<path>    `ssh [-p port] [user@]host flux relay <path>`: the same bytes
 *                                      over the child's stdin/stdout, auth byte included
 * A bare absolute path is taken as local.
 */
import { ConfigError } from '../../schemas/errors.js';

export type FluxUri =
  | { kind: 'local'; uri: string; path: string }
  | { kind: 'ssh'; uri: string; host: string; user?: string; port?: number; path: string };

export function parseFluxUri(uri: string | undefined): FluxUri {
  const raw = (uri ?? '').trim();
  if (!raw) throw new ConfigError('no Flux URI: set FLUX_URI or the source option `uri` (local:///run/flux/local or ssh://host/path)');
  if (raw.startsWith('/')) return { kind: 'local', uri: `local://${raw}`, path: raw };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`bad Flux URI "${raw}": expected local://<socket path> or ssh://[user@]host/<socket path>`);
  }
  const path = decodeURIComponent(u.pathname);
  if (u.protocol === 'local:') {
    if (u.host) throw new ConfigError(`bad Flux URI "${raw}": local:// takes an absolute path (local:///run/flux/local)`);
    if (!path.startsWith('/')) throw new ConfigError(`bad Flux URI "${raw}": the socket path must be absolute`);
    return { kind: 'local', uri: raw, path };
  }
  if (u.protocol === 'ssh:') {
    if (!u.hostname) throw new ConfigError(`bad Flux URI "${raw}": ssh:// needs a host`);
    if (!path || path === '/') throw new ConfigError(`bad Flux URI "${raw}": ssh:// needs the remote socket path`);
    const out: FluxUri = { kind: 'ssh', uri: raw, host: u.hostname, path };
    if (u.username) out.user = decodeURIComponent(u.username);
    if (u.port) out.port = Number(u.port);
    return out;
  }
  throw new ConfigError(`unsupported Flux URI scheme "${u.protocol}" in "${raw}": use local:// or ssh://`);
}
