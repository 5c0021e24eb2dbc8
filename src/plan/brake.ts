// The mass-change brake (Connector.spec.safety): deprovisions per connector are counted over a
// sliding hour; past the limit further deprovisions are held until approved. Pure state with an
// explicit clock, so the rules are unit-tested without servers.

export const HOUR_MS = 3_600_000;
export const DEFAULT_MAX_PER_HOUR = 20;
export const DEFAULT_MAX_PERCENT = 10;

export type Safety = { maxDeprovisionsPerHour?: number; maxDeprovisionPercent?: number };

/** The percentage never limits below this many accounts an hour: a small directory is not stuck on its second leaver. */
export const PERCENT_FLOOR = 5;

/**
 * How many accounts may be deprovisioned per hour: the smaller of maxDeprovisionsPerHour and
 * maxDeprovisionPercent of the managed accounts (rounded up, and at least PERCENT_FLOOR).
 * 0 in either holds every deprovision for approval.
 */
export function deprovisionLimit(safety: Safety | undefined, managedAccounts: number): number {
  const perHour = safety?.maxDeprovisionsPerHour ?? DEFAULT_MAX_PER_HOUR;
  const percent = safety?.maxDeprovisionPercent ?? DEFAULT_MAX_PERCENT;
  // 100 % of the managed accounts is no percentage limit at all, whatever the current count.
  const byPercent =
    percent === 0
      ? 0
      : percent >= 100
        ? Infinity
        : Math.max(PERCENT_FLOOR, Math.ceil((percent * managedAccounts) / 100));
  return Math.min(perHour, byPercent);
}

/**
 * The managed accounts the percentage is taken of: the larger of what Employee status records
 * and what the last full scan found (the operator writes that into Connector status), so a
 * restart or a batch in flight does not make the limit tighter than it is. The operator and
 * `roster plan` both take the denominator from here.
 */
export function managedAccountCount(
  connector: string,
  employees: readonly { status?: { accounts?: readonly { connector: string; state: string }[] } }[],
  scanned: number | undefined,
): number {
  const recorded = employees.filter((e) =>
    e.status?.accounts?.some(
      (a) => a.connector === connector && ["Active", "Disabled", "Held"].includes(a.state),
    ),
  ).length;
  return Math.max(recorded, scanned ?? 0);
}

type ConnectorState = {
  /** Account key -> when its deprovisioning was counted. */
  counted: Map<string, number>;
  /** Accounts waiting for approval, with when they were first held. */
  held: Map<string, number>;
  /** Deprovisions released by approval and not yet used. */
  approved: number;
};

export type BrakeDecision = { allowed: true } | { allowed: false; held: number; limit: number };

export class DeprovisionBrake {
  private readonly connectors = new Map<string, ConnectorState>();

  private state(connector: string): ConnectorState {
    let state = this.connectors.get(connector);
    if (!state) {
      state = { counted: new Map(), held: new Map(), approved: 0 };
      this.connectors.set(connector, state);
    }
    return state;
  }

  private prune(state: ConnectorState, now: number): void {
    for (const [key, at] of state.counted) if (now - at >= HOUR_MS) state.counted.delete(key);
  }

  /**
   * Asks to deprovision one account. An account counts once per hour however many operations its
   * deprovisioning takes (disable, group removals, delete), so a leaver is one, not five.
   */
  request(connector: string, account: string, limit: number, now: number): BrakeDecision {
    const state = this.state(connector);
    this.prune(state, now);
    if (state.counted.has(account)) return { allowed: true };
    if (state.counted.size < limit) {
      state.counted.set(account, now);
      state.held.delete(account);
      return { allowed: true };
    }
    if (state.approved > 0) {
      state.approved--;
      state.counted.set(account, now);
      state.held.delete(account);
      return { allowed: true };
    }
    if (!state.held.has(account)) state.held.set(account, now);
    return { allowed: false, held: state.held.size, limit };
  }

  /** The account no longer needs deprovisioning (rehired, approved elsewhere, gone). */
  withdraw(connector: string, account: string): void {
    this.connectors.get(connector)?.held.delete(account);
  }

  /** Releases up to `count` held deprovisions. */
  approve(connector: string, count: number): void {
    if (count > 0) this.state(connector).approved += count;
  }

  held(connector: string): string[] {
    return [...(this.connectors.get(connector)?.held.keys() ?? [])];
  }

  counted(connector: string, now: number): number {
    const state = this.connectors.get(connector);
    if (!state) return 0;
    this.prune(state, now);
    return state.counted.size;
  }
}
