/**
 * Who is asking. Every MCP server instance is built for one identity: stdio and unauthenticated
 * loopback HTTP serve `LOCAL_IDENTITY` (the person at this machine, an admin); authenticated HTTP
 * builds one per request from the bearer token or JWT (mcp/auth.ts).
 *
 * `user` is the scheduler user the identity acts as: jobs whose `user` column equals it are its
 * own. Roles: `admin` (sees and acts on every job), `approver` (may approve another identity's
 * bulk action). Anything else is a plain user.
 */
export const ROLES = ['admin', 'approver'] as const;
export type Role = (typeof ROLES)[number];

export interface Identity {
  /** Who authenticated: the token's configured name or the JWT `sub`. Used for audit and rate limits. */
  subject: string;
  /** The scheduler user name (Flux/Slurm) this identity is; undefined when it maps to none. */
  user?: string;
  roles: readonly string[];
}

/** stdio, and HTTP on loopback with no authentication configured. */
export const LOCAL_IDENTITY: Identity = Object.freeze({ subject: 'local', roles: Object.freeze(['admin']) });

/** Whose job details an identity may read: `own` (default) or `all` (any authenticated identity). */
export type JobDetailsPolicy = 'own' | 'all';

export function hasRole(identity: Identity, role: Role): boolean {
  return identity.roles.includes(role);
}

/** May `identity` read the details (row, timeline) of a job owned by `jobUser`? */
export function canReadJob(identity: Identity, jobUser: string, policy: JobDetailsPolicy): boolean {
  return policy === 'all' || hasRole(identity, 'admin') || (identity.user !== undefined && identity.user === jobUser);
}

/**
 * The `user` a job-detail query must be restricted to for this identity, or undefined when it
 * may see every job. An identity with no scheduler user and no admin role sees no job details.
 */
export function jobDetailsUserFilter(identity: Identity, policy: JobDetailsPolicy): { user: string } | { none: true } | undefined {
  if (policy === 'all' || hasRole(identity, 'admin')) return undefined;
  return identity.user !== undefined ? { user: identity.user } : { none: true };
}
