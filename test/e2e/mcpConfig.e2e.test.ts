/**
 * MCP HTTP configuration errors through the real CLI: `up` and `mcp --http` exit 2 with a message
 * naming the setting, before opening any store (no data directory is created), for a wildcard
 * bind without authentication, a missing, empty or trivial tokens file, a short token and a plain-http JWKS URL;
 * and a loopback bind without tokens, or a tokens or signing-keys file others may read, starts
 * with a WARNING on stderr (at any log level).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli, stopCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'jobscribe-mcpconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tokensFile(name: string, entries: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(entries));
  chmodSync(path, 0o600);
  return path;
}

const cases: [string, string[], RegExp][] = [
  ['0.0.0.0 without authentication', ['--http-host', '0.0.0.0'], /refusing to serve MCP on 0\.0\.0\.0: non-loopback binds need authentication; configure mcpTokens/],
  ['a missing tokens file', ['--mcp-tokens', join(dir, 'no-such-tokens.json')], /invalid setting mcpTokens: .*no-such-tokens\.json cannot be read/],
  ['an 8-character token', ['--mcp-tokens', tokensFile('short.json', [{ name: 'ops', token: 'abcd1234', roles: ['admin'] }])], /invalid setting mcpTokens: .*short\.json, entry 0\.token: .*at least 16 characters/],
  ['an empty tokens file', ['--mcp-tokens', tokensFile('empty.json', [])], /invalid setting mcpTokens: .*empty\.json holds no tokens/],
  ['a trivial admin token', ['--mcp-tokens', tokensFile('trivial.json', [{ name: 'ops', token: 'a'.repeat(16), roles: ['admin'] }])], /invalid setting mcpTokens: .*trivial\.json, entry 0\.token \("ops"\): too easy to guess/],
  [
    'a plain-http JWKS URL',
    ['--mcp-oauth-issuer', 'https://idp.example.org/realms/hpc', '--mcp-oauth-jwks-url', 'http://idp.example.org/certs'],
    /invalid setting mcpOauthJwksUrl: http:\/\/idp\.example\.org\/certs must be https/,
  ],
];

describe('MCP HTTP configuration errors exit 2 before any store is opened', () => {
  for (const command of [['up'], ['mcp', '--http']]) {
    for (const [what, flags, message] of cases) {
      it(`${command.join(' ')}: ${what}`, async () => {
        const dataDir = join(dir, `data-${command[0]}-${what.replace(/\W+/g, '-')}`);
        const r = await runCli([...command, '--data-dir', dataDir, '--http-port', '0', '--log-level', 'warn', ...flags], { timeoutMs: 60_000 });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(r.stdout).not.toContain('MCP endpoint');
        expect(existsSync(join(dataDir, 'clickhouse')), 'no store was opened').toBe(false);
      });
    }
  }
});

describe('a loopback bind without authentication warns at start-up', () => {
  const WARNING = /^jobscribe: WARNING: MCP at http:\/\/127\.0\.0\.1:\d+\/mcp has no authentication: every user of this host .* is admin.*--mcp-tokens FILE/m;
  const argsOf = (command: string) =>
    command === 'up' ? ['up', '--sim-jobs', '3', '--sim-nodes', '2'] : ['mcp', '--http'];

  for (const command of ['up', 'mcp']) {
    it(`${command}: WARNING without tokens, none with them`, async () => {
      const open = startCli([...argsOf(command), '--data-dir', join(dir, `warn-open-${command}`), '--http-port', '0', '--log-level', 'error']);
      try {
        await open.waitFor(/MCP endpoint: http:\/\/\S+\/mcp/);
        expect(open.stderr()).toMatch(WARNING);
      } finally {
        await stopCli(open);
      }
      const tokens = tokensFile(`warn-${command}.json`, [{ name: 'ops', token_sha256: 'a'.repeat(64), roles: ['admin'] }]);
      const closed = startCli([...argsOf(command), '--data-dir', join(dir, `warn-closed-${command}`), '--http-port', '0', '--log-level', 'error', '--mcp-tokens', tokens]);
      try {
        await closed.waitFor(/MCP endpoint: http:\/\/\S+\/mcp/);
        expect(closed.stderr()).not.toContain('WARNING');
      } finally {
        await stopCli(closed);
      }
    });
  }
});

describe('secrets files others may read', () => {
  it('mcp --http warns about a tokens file and a signing-keys file with group/other bits, naming the fix', async () => {
    const tokens = tokensFile('loose-tokens.json', [{ name: 'ops', token_sha256: 'b'.repeat(64), roles: ['admin'] }]);
    chmodSync(tokens, 0o644);
    const keys = join(dir, 'loose-keys.json');
    writeFileSync(keys, JSON.stringify({ '*': { active: 'k1', keys: { k1: randomBytes(32).toString('base64') } } }));
    chmodSync(keys, 0o640);
    const server = startCli(['mcp', '--http', '--data-dir', join(dir, 'loose'), '--http-port', '0', '--log-level', 'error', '--mcp-tokens', tokens, '--signing-keys', keys]);
    try {
      await server.waitFor(/MCP endpoint: http:\/\/\S+\/mcp/);
      expect(server.stderr()).toContain(`jobscribe: WARNING: the mcpTokens file ${tokens} is readable or writable by group or others (mode 0644)`);
      expect(server.stderr()).toContain(`chmod 600 ${tokens}`);
      expect(server.stderr()).toContain(`jobscribe: WARNING: the signingKeys file ${keys} is readable or writable by group or others (mode 0640)`);
    } finally {
      await stopCli(server);
    }
  });
});
