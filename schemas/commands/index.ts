/**
 * Command records (command, approval, command-result) and the signing keys file format.
 * One version so far; readers use `decodeCommandRecord`.
 */
export * from './v1/commands.js';
export * from './v1/signingKeys.js';
