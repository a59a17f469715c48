/**
 * Flux wire protocol (scribe/flux/protocol) against the real captures of a flux-core 0.88 broker
 * in fixtures/flux/wire: requests re-encoded byte for byte, responses decoded to the expected
 * topics / payloads / errnums (and re-encoded byte for byte), the long frame form, and partial
 * reads split at every boundary. Also the pure journal tracker (seq scheme, checkpoint).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FluxError } from '../../scribe/flux/errors.js';
import * as attrGet from '../../scribe/flux/protocol/attr-get/index.js';
import * as journal from '../../scribe/flux/protocol/events-journal/index.js';
import * as kill from '../../scribe/flux/protocol/kill/index.js';
import {
  decodeMessage,
  encodeMessage,
  FramingError,
  MsgFlag,
  MsgType,
  type FluxMessage,
} from '../../scribe/flux/protocol/message.js';
import { payloadObject, payloadText, stringifyJson } from '../../scribe/flux/protocol/json.js';
import * as raise from '../../scribe/flux/protocol/raise/index.js';
import { MessageReader } from '../../scribe/flux/protocol/reader.js';
import { decodeResponse, encodeRequest, parseResponse } from '../../scribe/flux/protocol/rpc.js';
import * as submit from '../../scribe/flux/protocol/submit/index.js';
import * as urgency from '../../scribe/flux/protocol/urgency/index.js';
import { parseFluxUri } from '../../scribe/flux/uri.js';
import { SEQ_SLOT, type JournalEntry } from '../../scribe/flux/journal.js';
import { timeSlot } from '../../scribe/flux/identity.js';
import { decodeIdSet, encodeIdSet, JournalTracker } from '../../scribe/flux/tracker.js';
import { mapUserResolver, parsePasswd } from '../../scribe/flux/users.js';
import { fluxFixture } from '../support/fixtures.js';
import { ccanBase64Decode, fluxSignNoneUnwrap, ingestRequest } from '../support/fakeSignNone.js';

const wire = (name: string): Buffer => readFileSync(fluxFixture.path(`wire/${name}`));
const journalFull = (): Buffer => gunzipSync(wire('journal-full.bin.gz'));

function readAll(bytes: Uint8Array, chunking: (n: number) => number[] = (n) => [n]): { auth?: number; msgs: FluxMessage[] } {
  const reader = new MessageReader({ expectAuthByte: true });
  const msgs: FluxMessage[] = [];
  let at = 0;
  for (const size of chunking(bytes.length)) {
    msgs.push(...reader.push(bytes.subarray(at, at + size)));
    at += size;
  }
  expect(at).toBe(bytes.length);
  expect(reader.pendingBytes).toBe(0);
  return { auth: reader.auth, msgs };
}

function text(m: FluxMessage): string | undefined {
  return payloadText(m.payload);
}

describe('Flux protocol > requests: encode reproduces the captured bytes', () => {
  const cases: [file: string, expected: { topic: string; payload: string; flags: number }, encode: (m: FluxMessage) => Buffer][] = [
    [
      'journal-full.bin.request',
      { topic: 'job-manager.events-journal', payload: '{"full":true}', flags: 0x4b },
      (m) => journal.encode({ full: true }, m.aux2),
    ],
    [
      'raise-ok.bin.request',
      { topic: 'job-manager.raise', payload: '{"id":5358877671424,"type":"cancel","severity":0,"note":"probe"}', flags: 0x0b },
      (m) => raise.encode({ id: 5358877671424n, type: 'cancel', severity: 0, note: 'probe' }, m.aux2),
    ],
    [
      'raise-enoent.bin.request',
      { topic: 'job-manager.raise', payload: '{"id":1,"type":"cancel","severity":0,"note":"x"}', flags: 0x0b },
      (m) => raise.encode({ id: 1n, type: 'cancel', severity: 0, note: 'x' }, m.aux2),
    ],
    [
      'urgency-ok.bin.request',
      { topic: 'job-manager.urgency', payload: '{"id":5358877671424,"urgency":16}', flags: 0x0b },
      (m) => urgency.encode({ id: 5358877671424n, urgency: 16 }, m.aux2),
    ],
    [
      'enosys.bin.request',
      { topic: 'nosuch.service', payload: '{}', flags: 0x0b },
      (m) => encodeRequest({ topic: 'nosuch.service', payload: {}, matchtag: m.aux2 }),
    ],
  ];
  for (const [file, expected, encode] of cases) {
    it(file, () => {
      const bytes = wire(file);
      const m = decodeMessage(bytes);
      expect(m.type).toBe(MsgType.REQUEST);
      expect(m.topic).toBe(expected.topic);
      expect(text(m)).toBe(expected.payload);
      expect(m.payload![m.payload!.length - 1]).toBe(0); // JSON payloads are NUL-terminated
      expect(m.flags).toBe(expected.flags);
      expect(m.routes).toEqual([]);
      expect(m.userid).toBe(0xffffffff);
      expect(m.rolemask).toBe(0);
      expect(m.aux1).toBe(0xffffffff); // nodeid any
      expect(m.aux2).toBe(1); // matchtag
      expect(encode(m).equals(bytes)).toBe(true);
      expect(encodeMessage(m).equals(bytes)).toBe(true);
    });
  }

  it('the stream cancel is a NORESPONSE request {"matchtag":N}', () => {
    const m = decodeMessage(journal.encodeCancel(7));
    expect(m.topic).toBe('job-manager.events-journal-cancel');
    expect(text(m)).toBe('{"matchtag":7}');
    expect(m.flags & MsgFlag.NORESPONSE).toBe(MsgFlag.NORESPONSE);
    expect(m.flags & MsgFlag.STREAMING).toBe(0);
  });

  it('kill, attr.get and job-ingest.submit payloads', () => {
    expect(text(decodeMessage(kill.encode({ id: 18446744073709551615n, signum: 15 }, 3)))).toBe(
      '{"id":18446744073709551615,"signum":15}',
    );
    expect(text(decodeMessage(attrGet.encode({ name: 'security.owner' }, 3)))).toBe('{"name":"security.owner"}');
    const m = decodeMessage(submit.encode({ jobspec: '{"version":1}', urgency: 16, flags: 0, userid: 1000 }, 4));
    expect(m.topic).toBe('job-ingest.submit');
    const p = payloadObject(m.payload)!;
    expect(p).toEqual({ J: expect.any(String), urgency: 16, flags: 0 });
    // header_encode: snprintf "version:i1:userid:i%lu:mechanism:snone:" with every ':' made NUL
    const header = 'dmVyc2lvbgBpMQB1c2VyaWQAaTEwMDAAbWVjaGFuaXNtAHNub25lAA==';
    expect(Buffer.from(header, 'base64').toString('latin1')).toBe('version\0i1\0userid\0i1000\0mechanism\0snone\0');
    expect(p.J).toBe(`${header}.eyJ2ZXJzaW9uIjoxfQ==.none`);
    expect(fluxSignNoneUnwrap(p.J as string)).toEqual({ payload: Buffer.from('{"version":1}'), userid: 1000 });
  });

  it('64-bit ids are written exactly', () => {
    expect(stringifyJson({ id: 2n ** 63n + 5n, a: [1n, 'x'] })).toBe('{"id":9223372036854775813,"a":[1,"x"]}');
  });
});

describe('Flux protocol > responses: decode the captured bytes', () => {
  it('raise-ok: success, no payload, matchtag 1', () => {
    const { auth, msgs } = readAll(wire('raise-ok.bin'));
    expect(auth).toBe(0);
    expect(msgs).toHaveLength(1);
    const d = raise.decode(msgs[0]!);
    expect(d).toEqual({ topic: 'job-manager.raise', matchtag: 1, errnum: 0, streaming: false });
    expect(() => raise.parse(d)).not.toThrow();
    expect(msgs[0]!.rolemask).toBe(5);
  });

  it('raise-enoent: errnum 2 "unknown job id"; decode does not throw, parse does', () => {
    const { msgs } = readAll(wire('raise-enoent.bin'));
    const d = raise.decode(msgs[0]!);
    expect(d.errnum).toBe(2);
    expect(d.error).toBe('unknown job id');
    let err: unknown;
    try {
      raise.parse(d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FluxError);
    expect((err as FluxError).errname).toBe('ENOENT');
    expect((err as FluxError).errnum).toBe(2);
    expect((err as FluxError).retriable).toBe(false);
    expect((err as FluxError).message).toContain('unknown job id');
  });

  it('enosys: errnum 38 with the broker message', () => {
    const { msgs } = readAll(wire('enosys.bin'));
    const d = decodeResponse(msgs[0]!);
    expect(d.topic).toBe('nosuch.service');
    expect(d.errnum).toBe(38);
    expect(d.error).toBe('No service matching nosuch.service is registered');
    expect(() => parseResponse(d)).toThrow(/service missing \(ENOSYS\): No service matching/);
  });

  it('urgency-ok: {"old_urgency":0}', () => {
    const { msgs } = readAll(wire('urgency-ok.bin'));
    const d = urgency.decode(msgs[0]!);
    expect(d.errnum).toBe(0);
    expect(urgency.parse(d)).toEqual({ old_urgency: 0 });
  });

  it('journal-full: 2,038 streaming responses ending with the sentinel, re-encoded byte for byte', () => {
    const bytes = journalFull();
    const { auth, msgs } = readAll(bytes);
    expect(auth).toBe(0);
    expect(msgs).toHaveLength(2038);
    let events = 0;
    for (const m of msgs) {
      expect(m.type).toBe(MsgType.RESPONSE);
      expect(m.topic).toBe('job-manager.events-journal');
      expect(m.flags & MsgFlag.STREAMING).toBe(MsgFlag.STREAMING);
      const r = journal.parse(journal.decode(m));
      expect(r.kind).toBe('data');
      if (r.kind === 'data') events += (JSON.parse(r.text) as { events: unknown[] }).events.length;
    }
    const last = journal.decode(msgs.at(-1)!);
    expect(last).toEqual({ kind: 'data', matchtag: 1, text: '{"id":-1,"events":[]}' });
    expect(journal.isSentinelText((last as { text: string }).text)).toBe(true);
    expect(msgs.slice(0, -1).every((m) => !journal.isSentinelText(text(m)!))).toBe(true);
    expect(events).toBeGreaterThan(20_000);
    // every response re-encodes to exactly the bytes the broker sent
    const re = Buffer.concat([Buffer.from([0]), ...msgs.map(encodeMessage)]);
    expect(re.equals(bytes)).toBe(true);
  });

  it('an ENODATA response is the normal end of a stream, other errnums throw at parse', () => {
    const end = { type: MsgType.RESPONSE, flags: MsgFlag.STREAMING, userid: 0, rolemask: 5, aux1: 61, aux2: 3, routes: [], topic: journal.TOPIC } as FluxMessage;
    expect(journal.parse(journal.decode(end))).toEqual({ kind: 'end', matchtag: 3 });
    const eperm = { ...end, aux1: 1, payload: Buffer.from('Permission denied\0') };
    expect(journal.decode(eperm)).toEqual({ kind: 'error', matchtag: 3, errnum: 1, error: 'Permission denied' });
    expect(() => journal.parse(journal.decode(eperm))).toThrow(FluxError);
  });
});

describe('Flux protocol > framing', () => {
  const msgWithPayload = (n: number): FluxMessage => ({
    type: MsgType.RESPONSE,
    flags: 0,
    userid: 0,
    rolemask: 5,
    aux1: 0,
    aux2: 9,
    routes: [],
    topic: 't',
    payload: Buffer.alloc(n, 0x61),
  });

  it('frames of 255 bytes and more use the 0xff long form, shorter ones one byte', () => {
    for (const n of [0, 1, 254, 255, 256, 70_000]) {
      const bytes = encodeMessage(msgWithPayload(n));
      // magic(4) len(4) delimiter(1) topic(2) then the payload frame size
      const at = 8 + 1 + 2;
      if (n < 255) {
        expect(bytes[at]).toBe(n);
      } else {
        expect(bytes[at]).toBe(0xff);
        expect(bytes.readUInt32BE(at + 1)).toBe(n);
      }
      expect(bytes.readUInt32BE(4)).toBe(bytes.length - 8);
      const back = decodeMessage(bytes);
      expect(back.payload!.length).toBe(n);
      expect(encodeMessage(back).equals(bytes)).toBe(true);
    }
    // the capture's first response has a 1,415-byte payload in the long form
    const full = journalFull();
    expect(full[0x25]).toBe(0xff);
    expect(full.readUInt32BE(0x26)).toBe(0x587);
  });

  it('a small message split at every possible boundary decodes identically', () => {
    for (const file of ['urgency-ok.bin', 'raise-enoent.bin', 'enosys.bin']) {
      const bytes = wire(file);
      const whole = readAll(bytes).msgs;
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(readAll(bytes, (n) => [cut, n - cut]).msgs).toEqual(whole);
      }
      for (let a = 1; a < bytes.length - 1; a += 3) {
        for (let b = a + 1; b < bytes.length; b += 5) {
          expect(readAll(bytes, (n) => [a, b - a, n - b]).msgs).toEqual(whole);
        }
      }
      expect(readAll(bytes, (n) => Array<number>(n).fill(1)).msgs).toEqual(whole);
    }
  });

  it('the big capture in random chunks decodes identically', () => {
    const bytes = journalFull();
    const whole = readAll(bytes).msgs.map((m) => ({ ...m, payload: text(m) }));
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (const max of [7, 300, 5000, 70_000]) {
      const sizes = (n: number) => {
        const out: number[] = [];
        for (let left = n; left > 0; ) {
          const s = Math.min(left, 1 + Math.floor(rnd() * max));
          out.push(s);
          left -= s;
        }
        return out;
      };
      const got = readAll(bytes, sizes).msgs.map((m) => ({ ...m, payload: text(m) }));
      expect(got).toEqual(whole);
    }
  });

  it('rejects bytes that are not a Flux message', () => {
    const r = new MessageReader();
    expect(() => r.push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(FramingError);
    const bad = encodeMessage(msgWithPayload(3));
    bad[bad.length - 20] = 0x00; // proto magic
    expect(() => decodeMessage(bad)).toThrow(FramingError);
  });

  it('an auth byte other than 0 is kept and no message is read', () => {
    const r = new MessageReader({ expectAuthByte: true });
    expect(r.push(Buffer.from([1]))).toEqual([]);
    expect(r.auth).toBe(1);
  });
});

describe('Flux URIs', () => {
  it('local and ssh', () => {
    expect(parseFluxUri('local:///run/flux/local')).toEqual({ kind: 'local', uri: 'local:///run/flux/local', path: '/run/flux/local' });
    expect(parseFluxUri('/tmp/flux-x/local-0')).toMatchObject({ kind: 'local', path: '/tmp/flux-x/local-0' });
    expect(parseFluxUri('ssh://alice@login1:2222/tmp/flux-abc/local-0')).toEqual({
      kind: 'ssh',
      uri: 'ssh://alice@login1:2222/tmp/flux-abc/local-0',
      host: 'login1',
      user: 'alice',
      port: 2222,
      path: '/tmp/flux-abc/local-0',
    });
    expect(parseFluxUri('ssh://login1/run/flux/local')).toEqual({ kind: 'ssh', uri: 'ssh://login1/run/flux/local', host: 'login1', path: '/run/flux/local' });
    expect(() => parseFluxUri('tcp://x:1')).toThrow(/unsupported Flux URI scheme/);
    expect(() => parseFluxUri('')).toThrow(/FLUX_URI/);
    expect(() => parseFluxUri('ssh://host')).toThrow(/remote socket path/);
  });
});

describe('Flux journal tracker (pure): stable seqs and the checkpoint', () => {
  const entry = (id: string, ...evs: [string, number][]): JournalEntry => ({
    id,
    events: evs.map(([name, timestamp]) => (name === 'submit' ? { name, timestamp, context: { userid: 1000, urgency: 16, flags: 0 } } : { name, timestamp })),
  });
  const seqs = (evs: { name: string; seq: number }[]) => evs.map((e) => `${e.name}@${e.seq}`);
  const S = SEQ_SLOT;

  it('journal-only events slot between stored ones; a backlog after a restart yields the same seqs', () => {
    const users = mapUserResolver({ 1000: 'alice' });
    const live = new JournalTracker({ users });
    const out = [
      ...live.apply(entry('9007199254740993', ['submit', 1])),
      ...live.apply(entry('9007199254740993', ['annotations', 1.5])),
      ...live.apply(entry('9007199254740993', ['annotations', 1.6])),
      ...live.apply(entry('9007199254740993', ['alloc', 2])),
      ...live.apply(entry('9007199254740993', ['start', 3])),
    ];
    const ann = (ts: number) => 2 * timeSlot(ts - 1) + 2; // even offsets after submit, by time
    expect(seqs(out)).toEqual(['submit@0', `annotations@${ann(1.5)}`, `annotations@${ann(1.6)}`, `alloc@${S}`, `start@${2 * S}`]);
    expect(out.every((e) => e.user === 'alice' && e.job_id === '9007199254740993')).toBe(true);
    // restart without a checkpoint: the backlog holds the stored events only
    const again = new JournalTracker({ users });
    again.beginBacklog();
    const back = again.apply(entry('9007199254740993', ['submit', 1], ['alloc', 2], ['start', 3]));
    expect(seqs(back)).toEqual(['submit@0', `alloc@${S}`, `start@${2 * S}`]);
    // restart from the checkpoint: nothing again, then the next events continue the numbering
    const resumed = JournalTracker.restore(live.checkpoint(), { users });
    resumed.beginBacklog();
    expect(resumed.apply(entry('9007199254740993', ['submit', 1], ['alloc', 2], ['start', 3], ['finish', 4]))).toHaveLength(1);
    resumed.apply({ id: '-1', events: [] });
    const tail = [...resumed.apply(entry('9007199254740993', ['annotations', 4.5])), ...resumed.apply(entry('9007199254740993', ['release', 5]))];
    expect(seqs(tail)).toEqual([`annotations@${3 * S + 2 * timeSlot(4.5 - 4) + 2}`, `release@${4 * S}`]);
    expect(tail[1]!.user).toBe('alice'); // the submitter's uid came from the checkpoint
  });

  it('a volatile memo does not count: a backlog without it resumes at the next stored event, numbered as stored', () => {
    const t = new JournalTracker();
    t.apply(entry('7', ['submit', 1]));
    t.apply(entry('7', ['memo', 1.5])); // volatile: never in the eventlog, so never in a backlog
    t.apply(entry('7', ['validate', 2]));
    t.beginBacklog();
    const evs = t.apply(entry('7', ['submit', 1], ['validate', 2], ['depend', 3]));
    expect(seqs(evs)).toEqual([`depend@${2 * S}`]); // its index in the eventlog, as a fresh read gives it
    const fresh = new JournalTracker();
    fresh.beginBacklog();
    expect(seqs(fresh.apply(entry('7', ['submit', 1], ['validate', 2], ['depend', 3])))).toEqual(['submit@0', `validate@${S}`, `depend@${2 * S}`]);
  });

  it('a checkpoint that counted a volatile memo (older scribes) realigns on the last timestamp seen', () => {
    // after submit@1 and a volatile memo@1.5: n = 2 "stored" events, the last at 1.5 (no backlog holds it)
    const t = JournalTracker.restore(JSON.stringify({ v: 1, jobs: [['7', 2, 0, 1.5, null]], done: '' }));
    t.beginBacklog();
    const evs = t.apply(entry('7', ['submit', 1], ['validate', 2], ['depend', 3]));
    expect(seqs(evs)).toEqual([`validate@${S}`, `depend@${2 * S}`]); // nothing skipped that was never published
  });

  it('finished jobs: skipped in later backlogs, pruned when purged, capped newest-first', () => {
    const t = new JournalTracker({ maxFinished: 4 });
    for (let i = 1; i <= 5; i++) t.apply(entry(String(i), ['submit', i], ['clean', i + 0.5]));
    expect(t.size).toEqual({ active: 0, done: 5 });
    t.apply(entry('6', ['submit', 6], ['clean', 6.5])); // 6 > 4 * 1.25: trim to the newest 4
    expect(t.size.done).toBe(4);
    const cp = JSON.parse(t.checkpoint()) as { done: string };
    expect(decodeIdSet(cp.done)).toEqual(['3', '4', '5', '6']);
    const r = JournalTracker.restore(t.checkpoint());
    r.beginBacklog();
    expect(r.apply(entry('6', ['submit', 6], ['clean', 6.5]))).toEqual([]);
    expect(seqs(r.apply(entry('2', ['submit', 2], ['clean', 2.5])))).toEqual(['submit@0', `clean@${S}`]); // forgotten: re-emitted, same seqs
    r.apply({ id: '-1', events: [] });
    expect(decodeIdSet((JSON.parse(r.checkpoint()) as { done: string }).done)).toEqual(['2', '6']); // 3, 4, 5 were purged
  });

  it('id sets round-trip exactly above 2^53', () => {
    const ids = ['18446744073709551615', '9007199254740993', '1', '643540451328'];
    expect(decodeIdSet(encodeIdSet(ids))).toEqual([...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)));
    expect(decodeIdSet('')).toEqual([]);
    expect(() => JournalTracker.restore('{"v":2}')).toThrow(/not a flux source checkpoint \(v=2\)/);
  });

  it('uid → user name from passwd text', () => {
    expect(parsePasswd('root:x:0:0:root:/root:/bin/bash\n# c\nalice:x:1000:1000::/home/alice:/bin/sh\nalias:x:0:0::/:/bin/sh\n')).toEqual(
      new Map([
        [0, 'root'],
        [1000, 'alice'],
      ]),
    );
  });
});

describe("the fake broker's job-ingest unwrap follows flux-core's sign_none.c", () => {
  const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');
  const J = (header: string, payload = '{"version":1}', tail = '.none') => `${b64(header)}.${Buffer.from(payload).toString('base64')}${tail}`;
  const OK = 'version\0i1\0userid\0i1000\0mechanism\0snone\0';
  const REFUSED = { ok: false, errnum: 22, message: 'could not unwrap jobspec: Invalid argument' };
  const submitBody = (j: string) => ({ J: j, urgency: 16, flags: 0 });

  it('unwraps the header flux-core writes, and what the product signs', () => {
    expect(fluxSignNoneUnwrap(J(OK))).toEqual({ payload: Buffer.from('{"version":1}'), userid: 1000 });
    const signed = submit.signNoneWrap('{"version":1}', 1000);
    expect(ingestRequest(submitBody(signed), 1000)).toEqual({ ok: true, jobspec: '{"version":1}', urgency: 16 });
  });

  it('refuses the "mech" key (what jobscribe sent before) with EINVAL "could not unwrap jobspec"', () => {
    expect(ingestRequest(submitBody(J('version\0i1\0userid\0i1000\0mech\0snone\0')), 1000)).toEqual(REFUSED);
  });

  it('refuses every header header_decode refuses', () => {
    const bad = [
      'version\0i1\0userid\0i1000\0mechanism\0snone\0extra\0x\0', // unknown key
      'version\0i1\0userid\0i1000\0mechanism\0snone\0version\0', // key without a value
      'version\0i1\0userid\0i1000\0', // no mechanism
      'version\0i2\0userid\0i1000\0mechanism\0snone\0',
      'version\0i1\0userid\0i1000\0mechanism\0smunge\0',
      'version\0i1\0userid\0i-1\0mechanism\0snone\0', // no sign
      'version\0i1\0userid\0i 5\0mechanism\0snone\0', // no white space
      'version\0i1\0userid\0i5x\0mechanism\0snone\0', // strtoul must reach the end
      'version\0i1\0userid\0s1000\0mechanism\0snone\0',
      'version\0i1\0userid\0i18446744073709551616\0mechanism\0snone\0', // ERANGE
      '',
    ];
    for (const h of bad) expect(fluxSignNoneUnwrap(J(h)), JSON.stringify(h)).toBeUndefined();
  });

  it('accepts what header_decode accepts: any key order, a last entry without its NUL, uid truncated to 32 bits', () => {
    expect(fluxSignNoneUnwrap(J('mechanism\0snone\0userid\0i7\0version\0i1\0'))?.userid).toBe(7);
    expect(fluxSignNoneUnwrap(J('version\0i1\0userid\0i7\0mechanism\0snone'))?.userid).toBe(7);
    expect(fluxSignNoneUnwrap(J('version\0i1\0userid\0i4294968296\0mechanism\0snone\0'))?.userid).toBe(1000);
  });

  it('the dots: the first ends the header, and after the second exactly ".none"', () => {
    expect(fluxSignNoneUnwrap(J(OK, '{}', '.none.x'))).toBeUndefined();
    expect(fluxSignNoneUnwrap(J(OK, '{}', '.nonex'))).toBeUndefined();
    expect(fluxSignNoneUnwrap(J(OK, '{}', ''))).toBeUndefined();
    expect(fluxSignNoneUnwrap(b64(OK))).toBeUndefined();
  });

  it('base64 as ccan decodes it: padding optional, "=" only at the end, no lone last char', () => {
    const d = (s: string) => ccanBase64Decode(Buffer.from(s, 'latin1'))?.toString('latin1');
    expect(d('aGk=')).toBe('hi');
    expect(d('aGk')).toBe('hi');
    expect(d('aGV5')).toBe('hey');
    expect(d('aGV5aGk')).toBe('heyhi');
    expect(d('')).toBe('');
    expect(d('aG=k')).toBeUndefined();
    expect(d('aGV5a')).toBeUndefined();
    expect(d('aG k')).toBeUndefined();
    expect(d('aGk-')).toBeUndefined();
  });

  it('answers as job-ingest does: request decoding, flags, urgency, signer, JSON', () => {
    const j = J(OK);
    expect(ingestRequest({ J: j, urgency: 16 }, 1000)).toMatchObject({ ok: false, errnum: 71 });
    expect(ingestRequest({ J: 5, urgency: 16, flags: 0 }, 1000)).toMatchObject({ ok: false, errnum: 71 });
    expect(ingestRequest({ J: j, urgency: 16, flags: 1 }, 1000)).toEqual({ ok: false, errnum: 71, message: 'invalid job flags' });
    expect(ingestRequest({ J: j, urgency: 32, flags: 0 }, 1000)).toEqual({ ok: false, errnum: 22, message: 'urgency range is [0:31]' });
    expect(ingestRequest(submitBody(j), 0)).toEqual({ ok: false, errnum: 1, message: 'signer=1000 != requestor=0' });
    expect(ingestRequest(submitBody(J(OK, '{"version":')), 1000)).toMatchObject({ ok: false, errnum: 22, message: expect.stringMatching(/^jobspec: invalid JSON: /) });
  });
});
