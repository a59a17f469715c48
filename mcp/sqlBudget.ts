/**
 * How much of the engine one identity's run_sql may hold: at most N queries in flight per
 * identity (plain users 1, admins a few; RunSqlLimits), counted across every MCP session of the
 * process. A query over the budget is refused at once with what to do, never queued, so one
 * agent's heavy queries cannot line up in front of everyone else's. The purpose-built tools do
 * not pass through here, and run on a connection of their own (deploy/clickhouse.ts `connect`).
 */
export class SqlBudget {
  readonly #inFlight = new Map<string, number>();

  /** Takes one slot for `who` (at most `limit`); returns its release, or undefined when full. */
  take(who: string, limit: number): (() => void) | undefined {
    const n = this.#inFlight.get(who) ?? 0;
    if (n >= limit) return undefined;
    this.#inFlight.set(who, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inFlight.get(who) ?? 1) - 1;
      if (left <= 0) this.#inFlight.delete(who);
      else this.#inFlight.set(who, left);
    };
  }
}

/** The process's budget, for servers built without one of their own. */
export const PROCESS_SQL_BUDGET = new SqlBudget();
