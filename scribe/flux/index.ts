/**
 * scribe/flux public surface: the journal source (with actions), the connector for direct RPCs,
 * the error type. Everything else in this folder is internal.
 */
export { createFluxSource, type FluxSource, type FluxSourceOptions, type FluxSourceProgress } from './source.js';
export { connectFlux, type FluxConnection, type FluxConnectOptions, type FluxStream } from './connector.js';
export { FluxError, isFluxError } from './errors.js';
export { parseFluxUri, type FluxUri } from './uri.js';
export { passwdUserResolver, mapUserResolver, type UserResolver } from './users.js';
export { JournalTracker, DEFAULT_MAX_FINISHED } from './tracker.js';
