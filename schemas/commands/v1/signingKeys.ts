/**
 * The signing keys file (config `signingKeys`): per cluster (or "*" for every cluster without
 * its own entry) the key id that signs now and every key id that still verifies. Rotation: add
 * a key id, switch `active` to it, and drop the old id once nothing signed with it is in flight.
 *
 *   { "tioga": { "active": "2026-11", "keys": { "2026-11": "<base64 secret>", "2026-05": "..." } },
 *     "*":     { "active": "k1", "keys": { "k1": "<base64 secret>" } } }
 */
import { z } from 'zod';

/** At least 32 bytes of secret (the HMAC-SHA256 block-size guidance is 32..64). */
export const MIN_SECRET_BYTES = 32;

const base64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

export const SigningKeySetSchema = z
  .object({
    active: z.string().min(1).max(128),
    keys: z.record(
      z.string().min(1).max(128),
      z
        .string()
        .regex(base64, 'a secret is base64 text')
        .refine((s) => Buffer.from(s, 'base64').length >= MIN_SECRET_BYTES, `a secret is at least ${MIN_SECRET_BYTES} bytes (base64 of 32 random bytes: openssl rand -base64 32)`),
    ),
  })
  .refine((k) => Object.hasOwn(k.keys, k.active), { message: 'active names no key in keys', path: ['active'] });
export type SigningKeySet = z.infer<typeof SigningKeySetSchema>;

export const SigningKeysFileSchema = z.record(
  z.string().regex(/^(\*|[a-z0-9][a-z0-9_-]{0,62})$/, 'keys are cluster names or "*"'),
  SigningKeySetSchema,
);
export type SigningKeysFile = z.infer<typeof SigningKeysFileSchema>;
