/** The strict Host/Origin check (mcp/hostCheck.ts) against a bank of tricky header values. */
import { describe, expect, it } from 'vitest';
import { canonicalAllowlist, checkHost, checkOrigin, parseHostPort } from '../../mcp/hostCheck.js';

const allowed = canonicalAllowlist(['localhost', '127.0.0.1', '[::1]', 'jobs.example.org', '::ffff:10.0.0.1']);
const host = (...values: string[]) => checkHost(values, allowed).ok;
const origin = (...values: string[]) => checkOrigin(values, allowed).ok;

describe('checkHost', () => {
  it('accepts allowed names with or without a port, in any case', () => {
    for (const v of ['localhost', 'localhost:8848', 'LOCALHOST:8848', 'LocalHost', '127.0.0.1:1', '[::1]:8848', '[::1]', '[0:0:0:0:0:0:0:1]:80', 'jobs.example.org:443', 'JOBS.Example.ORG', '[::ffff:10.0.0.1]:80']) {
      expect(host(v), v).toBe(true);
    }
  });

  it('refuses user info, paths, encodings, spaces, trailing dots and malformed ports', () => {
    for (const v of [
      'evil.example:80@localhost', 'evil.example@localhost', 'user:pw@localhost:8848', '@localhost', 'localhost@evil.example',
      'localhost.', 'localhost.:8848', '.localhost', 'local..host',
      'localhost%2e', 'local%68ost', '%6c%6f%63%61%6c%68%6f%73%74', '127.0.0.1%00', '[::1%25eth0]', '[fe80::1%eth0]:80',
      'local host', 'localhost :8848', 'localhost: 8848', 'localhost\t', ' localhost',
      'localhost:', 'localhost:-1', 'localhost:+80', 'localhost:0x50', 'localhost:65536', 'localhost:123456', 'localhost:80:80', 'localhost:8o',
      'localhost/', 'localhost/mcp', 'localhost?x', 'localhost#x', 'localhost\\evil', 'http://localhost', '//localhost',
      '::1', '[::1', '::1]', '[::1]x', '[::1]:', '[localhost]', '[127.0.0.1]', '[::1]]',
      '127.0.0.1.', '127.1', '0x7f.0.0.1', '2130706433', '127.000.000.001',
      'evil.example', 'evil.example:8848', 'localhost.evil.example', 'evil-localhost', '', ':8848',
      'lоcalhost', // Cyrillic o
    ]) {
      expect(host(v), JSON.stringify(v)).toBe(false);
    }
  });

  it('refuses a missing Host and two Host headers, even when both are allowed', () => {
    expect(checkHost(undefined, allowed).ok).toBe(false);
    expect(checkHost([], allowed).ok).toBe(false);
    expect(host('localhost', 'localhost')).toBe(false);
    expect(host('localhost', 'evil.example')).toBe(false);
  });

  it('never repeats the refused value', () => {
    const r = checkHost(['evil.example:80@localhost'], allowed);
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('evil');
  });
});

describe('checkOrigin', () => {
  it('passes without an Origin; accepts a full allowed origin', () => {
    expect(checkOrigin(undefined, allowed).ok).toBe(true);
    for (const v of ['http://localhost:8848', 'HTTP://LOCALHOST', 'https://jobs.example.org', 'http://[::1]:8848']) expect(origin(v), v).toBe(true);
  });

  it('refuses user info, paths, other schemes, null and foreign hosts', () => {
    for (const v of [
      'null', 'http://evil.example', 'http://evil.example:80@localhost', 'http://user@localhost', 'http://localhost/', 'http://localhost/path',
      'http://localhost?x', 'http://localhost#x', 'http://localhost.', 'file://localhost', 'ftp://localhost', 'localhost', 'http:/localhost',
      'http://localhost:99999', 'http://localhost:', 'http://local%68ost', 'http://localhost\\@evil.example', 'http://localhost http://evil.example', '',
    ]) {
      expect(origin(v), JSON.stringify(v)).toBe(false);
    }
    expect(origin('http://localhost', 'http://localhost')).toBe(false);
  });
});

describe('parseHostPort', () => {
  it('canonicalises case and IPv6', () => {
    expect(parseHostPort('LocalHost:80')).toBe('localhost');
    expect(parseHostPort('[0:0:0:0:0:0:0:1]')).toBe('[::1]');
  });
});
