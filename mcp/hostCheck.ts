/**
 * DNS-rebinding protection for the MCP HTTP endpoint: a strict, pure check of the `Host` and
 * `Origin` request headers against an allowlist of host names.
 *
 * Strict on purpose: the SDK's guard parses `Host` with the WHATWG URL parser, which reads
 * `evil.example:80@localhost` as user info + "localhost" and lets it through (and the request then
 * fails later with a 500). Here a Host must be exactly `name[:port]` — a DNS-style reg-name
 * (letters, digits, `-`, `_`, dot-separated, no empty label, so no trailing dot), an IPv4 address
 * or a bracketed IPv6 address without zone — with a digits-only port up to 65535; an Origin must
 * be exactly `http(s)://name[:port]` (no user info, path, query or fragment). Anything else is
 * refused, never normalised into something allowed. Names compare case-insensitively; IPv6
 * addresses compare in canonical form. Ports are not compared (the socket decides the port).
 *
 * Owns: the syntax and the comparison. Leaves to http.ts: which names are allowed, and the 403.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type HeaderCheck = { ok: true } | { ok: false; message: string };

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const PORT = /^[0-9]{1,5}$/;

/** The canonical host of `name[:port]` (lowercase; IPv6 bracketed and compressed), or undefined if malformed. */
export function parseHostPort(value: string): string | undefined {
  let host: string;
  let port: string | undefined;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) return undefined;
    host = value.slice(0, close + 1);
    const rest = value.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      port = rest.slice(1);
    }
  } else {
    const colon = value.indexOf(':');
    host = colon < 0 ? value : value.slice(0, colon);
    if (colon >= 0) port = value.slice(colon + 1);
  }
  if (port !== undefined && !(PORT.test(port) && Number(port) <= 65535)) return undefined;
  return canonicalHost(host);
}

/** A bare host name, IPv4 or (bracketed) IPv6 address in canonical form, or undefined if malformed. */
export function canonicalHost(host: string): string | undefined {
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) return undefined;
    const inner = host.slice(1, -1);
    // No zone ids (fe80::1%eth0): the % is also how percent-encoding would sneak in.
    if (!isIPv6(inner) || inner.includes('%')) return undefined;
    return `[${new URL(`http://[${inner}]/`).hostname.slice(1, -1)}]`;
  }
  const h = host.toLowerCase();
  if (isIPv4(h)) return h;
  if (h.length === 0 || h.length > 253) return undefined;
  return h.split('.').every((label) => LABEL.test(label)) ? h : undefined;
}

/** Canonical allowlist entries: names as given (lowercased), IPv6 with or without brackets. */
export function canonicalAllowlist(names: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const n of names) {
    const c = canonicalHost(isIPv6(n) ? `[${n}]` : n);
    if (c !== undefined) out.add(c);
  }
  return out;
}

const REFUSED_HOST = 'Host header refused: it must be name[:port] naming this server (see mcpAllowedHosts)';
const REFUSED_ORIGIN = 'Origin header refused: it must be scheme://name[:port] naming this server (see mcpAllowedHosts)';

/**
 * `values` are every Host header the request carried (Node's `req.headersDistinct.host`): exactly
 * one, well-formed and allowed. Refusal messages never repeat the header (no foreign value echoed).
 */
export function checkHost(values: readonly string[] | undefined, allowed: ReadonlySet<string>): HeaderCheck {
  if (!values || values.length !== 1) return { ok: false, message: REFUSED_HOST };
  const host = parseHostPort(values[0]!);
  return host !== undefined && allowed.has(host) ? { ok: true } : { ok: false, message: REFUSED_HOST };
}

const ORIGIN = /^(https?):\/\/([^/?#@\\]+)$/i;

/** No Origin passes (non-browser clients send none); one must be a full allowed origin; two never pass. */
export function checkOrigin(values: readonly string[] | undefined, allowed: ReadonlySet<string>): HeaderCheck {
  if (!values || values.length === 0) return { ok: true };
  if (values.length !== 1) return { ok: false, message: REFUSED_ORIGIN };
  const m = ORIGIN.exec(values[0]!);
  const host = m ? parseHostPort(m[2]!) : undefined;
  return host !== undefined && allowed.has(host) ? { ok: true } : { ok: false, message: REFUSED_ORIGIN };
}
