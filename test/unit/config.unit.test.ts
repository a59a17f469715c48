import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../deploy/config.js';
import { ConfigError } from '../../schemas/errors.js';

function configFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'jobscribe-config-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('loadConfig', () => {
  it('uses the defaults when nothing is given', () => {
    const c = loadConfig({ env: {} });
    expect(c).toMatchObject({ dataDir: '.data', database: 'jobscribe', httpHost: '127.0.0.1', httpPort: 8848, cluster: 'sim', seed: 1 });
  });

  it('takes flags over the environment over the file over defaults', () => {
    const file = configFile({ httpPort: 1000, seed: 5, cluster: 'fromfile', simSpeed: 10 });
    const env = { JOBSCRIBE_HTTP_PORT: '2000', JOBSCRIBE_SEED: '6' };
    const c = loadConfig({ env, configFile: file, flags: { httpPort: '3000' } });
    expect(c.httpPort).toBe(3000);
    expect(c.seed).toBe(6);
    expect(c.cluster).toBe('fromfile');
    expect(c.simSpeed).toBe(10);
  });

  it('takes cluster capacity as JSON from a flag or as an object from the file, and refuses a bad one', () => {
    const cap = { tioga: { nodes: 32, cores: 2048, gpus: 128 } };
    expect(loadConfig({ env: {}, flags: { mcpCapacity: JSON.stringify(cap) } }).mcpCapacity).toEqual(cap);
    expect(loadConfig({ env: {}, configFile: configFile({ mcpCapacity: cap }) }).mcpCapacity).toEqual(cap);
    expect(() => loadConfig({ env: {}, flags: { mcpCapacity: '{tioga' } })).toThrow(/mcpCapacity.*must be JSON/s);
    expect(() => loadConfig({ env: { JOBSCRIBE_MCP_CAPACITY: '{"tioga": {"nodes": 2}}' } })).toThrow(/mcpCapacity/);
  });

  it('reads the config file named by JOBSCRIBE_CONFIG', () => {
    const file = configFile({ database: 'center' });
    expect(loadConfig({ env: { JOBSCRIBE_CONFIG: file } }).database).toBe('center');
  });

  it('names the setting, its source and what is allowed when a value is bad', () => {
    const bad = (input: Parameters<typeof loadConfig>[0]) => {
      try {
        loadConfig(input);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(bad({ env: {}, flags: { httpPort: 'abc' } })).toMatch(/httpPort \(--http-port \/ JOBSCRIBE_HTTP_PORT, from flag\)/);
    expect(bad({ env: { JOBSCRIBE_HTTP_PORT: '70000' } })).toMatch(/httpPort.*from environment.*65535/);
    expect(bad({ env: {}, flags: { cluster: 'Bad Name!' } })).toMatch(/cluster.*a-z, 0-9/);
    expect(bad({ env: {}, flags: { logLevel: 'loud' } })).toMatch(/logLevel.*debug.*info/);
    expect(bad({ env: {}, configFile: configFile({ bogus: 1 }) })).toMatch(/unknown setting\(s\) bogus/);
    expect(bad({ env: {}, configFile: configFile('{not json') })).toMatch(/not a JSON object/);
    expect(bad({ env: {}, configFile: '/nonexistent/jobscribe.json' })).toMatch(/cannot be read/);
    expect(bad({ env: {}, flags: { clickhouseUrl: 'not a url' } })).toMatch(/clickhouseUrl.*URL/);
  });
});
