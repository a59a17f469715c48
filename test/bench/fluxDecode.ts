/**
 * Bench helper (called by the bench runner): decodes the captured `full` journal
 * (test/fixtures/flux/wire/journal-full.bin.gz: auth byte + 2,038 responses, 2.7 MB) `iterations`
 * times — framing, response decode, journal parse and seq/checkpoint bookkeeping, i.e. what the
 * source does per response minus the socket — and returns events per second.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as journal from '../../scribe/flux/protocol/events-journal/index.js';
import { MessageReader } from '../../scribe/flux/protocol/reader.js';
import { parseJournalLine } from '../../scribe/flux/journal.js';
import { JournalTracker } from '../../scribe/flux/tracker.js';

export interface JournalDecodeBench {
  eventsPerSec: number;
  responsesPerSec: number;
  mbPerSec: number;
  events: number;
  iterations: number;
  seconds: number;
}

/** test/fixtures/flux/wire/journal-full.bin.gz, from the source (test/bench) or the build (dist/test/bench). */
function defaultCapture(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const rel = join('fixtures', 'flux', 'wire', 'journal-full.bin.gz');
  return here.includes(`${join('dist', 'test')}`) ? join(here, '..', '..', '..', 'test', rel) : join(here, '..', rel);
}

/** Events/s decoding the capture `iterations` times (64 KiB chunks, as a socket delivers them). */
export function benchJournalDecode(iterations = 5, capturePath = defaultCapture()): number {
  return benchJournalDecodeDetailed(iterations, capturePath).eventsPerSec;
}

export function benchJournalDecodeDetailed(iterations = 5, capturePath = defaultCapture()): JournalDecodeBench {
  const file = readFileSync(capturePath);
  const bytes = capturePath.endsWith('.gz') ? gunzipSync(file) : file;
  let events = 0;
  let responses = 0;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const reader = new MessageReader({ expectAuthByte: true });
    const tracker = new JournalTracker();
    tracker.beginBacklog();
    for (let at = 0; at < bytes.length; at += 65536) {
      for (const msg of reader.push(bytes.subarray(at, at + 65536))) {
        const r = journal.parse(journal.decode(msg));
        if (r.kind !== 'data') continue;
        responses++;
        events += tracker.apply(parseJournalLine(r.text)).length;
      }
    }
    tracker.checkpoint();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    eventsPerSec: events / seconds,
    responsesPerSec: responses / seconds,
    mbPerSec: (bytes.length * iterations) / 2 ** 20 / seconds,
    events,
    iterations,
    seconds,
  };
}
