// The mass-change brake (Connector.spec.safety): deprovisions per connector are counted over a
// sliding hour; past the limit further deprovisions are held, and stay held (latched) until an
// exact approval. Pure state with an explicit clock, so the rules are unit-tested without servers;
// the operator keeps the state in Connector status.

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

/**
 * The brake of one connector, as it is kept in the Connector's status. Once anything is held
 * the brake is latched: every further deprovision is held too, however much time passes, until
 * an approval releases exactly the accounts held at that moment.
 */
export type BrakeState = {
  /** Accounts whose deprovisioning was counted in the last hour, with when. */
  counted: { account: string; at: string }[];
  /** Accounts waiting for approval, in the order they were held. */
  held: { account: string; at: string }[];
  /** Accounts an approval released; they stay released until they need no deprovisioning. */
  released: string[];
  /**
   * Counts taken ahead (see `Reserve`): each slot counts as one deprovision until an hour after
   * `until`, whether it was filled or not, unless the replica that took it (`by`) says otherwise.
   */
  reserved?: Reservation[];
  /**
   * Deletions handed over by Employees that were deleted before their account's `deleteAfter`
   * passed: the Connector deletes the account when it is due (through this brake).
   */
  scheduled?: ScheduledDeletion[];
};

export type ScheduledDeletion = {
  /** The brake's key for the person ("<namespace>/<employeeId>"). */
  account: string;
  employeeId: string;
  username: string;
  /** The account's id in the target, as the Employee recorded it. */
  id: string;
  deleteAt: string;
};

/** Adds (or replaces) the scheduled deletion of one person's account. */
export function scheduleDeletion(state: BrakeState, entry: ScheduledDeletion): BrakeState {
  const others = (state.scheduled ?? []).filter((s) => s.account !== entry.account);
  return { ...state, scheduled: [...others, entry] };
}

/** Drops a scheduled deletion (done, or no longer to be done). */
export function unscheduleDeletion(state: BrakeState, account: string): BrakeState {
  if (!state.scheduled?.some((s) => s.account === account)) return state;
  return { ...state, scheduled: state.scheduled.filter((s) => s.account !== account) };
}

/** The scheduled deletions due at `now`, and how long until the next one that is not. */
export function dueDeletions(
  state: BrakeState,
  now: number,
): { due: ScheduledDeletion[]; nextInMs: number | undefined } {
  const due: ScheduledDeletion[] = [];
  let next: number | undefined;
  for (const s of state.scheduled ?? []) {
    const at = Date.parse(s.deleteAt);
    if (at <= now) due.push(s);
    else next = Math.min(next ?? Infinity, at - now);
  }
  return { due, nextInMs: next };
}

export type BrakeDecision = { allowed: true } | { allowed: false; held: number; limit: number };

/** Slots taken ahead by one replica (its `by` for this term), usable until `until`. */
export type Reservation = { by: string; until: string; count: number };

/**
 * How a replica takes counts ahead: when a deprovision needs its count written first, up to
 * `slots` more are written with it, and the next deprovisions (until `forMs` has passed) fill
 * them without waiting for a write. The slots are in the stored state before any is filled, so
 * a restart, a crash or a failover can only count too many (slots taken and never filled), never
 * too few; a filled slot's account is written later, with other changes.
 */
export type Reserve = { by: string; slots: number; forMs: number };

/** At most 5% of the limit (and 50) is taken ahead: what a crash can over-count for an hour. */
export function reserveSlots(limit: number): number {
  return Math.min(50, Math.floor(limit / 20));
}

/**
 * What a change to the state needs before it takes effect: "before", that it is stored first (it
 * counts, holds or releases something the stored state does not already cover); "later", only
 * that it is stored some time (a slot filled, old counts dropped: the stored state already counts
 * at least as much).
 */
export type Persist = "before" | "later";

function stamp(now: number): string {
  return new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Drops counts older than an hour, slots whose hour after `until` has passed, and `by`'s own
 * slots that can no longer be filled (it knows they never were).
 */
function prune(state: BrakeState, now: number, by: string | undefined): BrakeState {
  const counted = state.counted.filter((c) => now - Date.parse(c.at) < HOUR_MS);
  const reserved = (state.reserved ?? []).filter((r) => {
    const until = Date.parse(r.until);
    return r.count > 0 && (r.by === by ? now < until : now - until < HOUR_MS);
  });
  if (counted.length === state.counted.length && reserved.length === (state.reserved?.length ?? 0))
    return state;
  return withSlots({ ...state, counted }, reserved);
}

/** The state with exactly these slots taken ahead; with none, no `reserved` at all. */
function withSlots(state: BrakeState, reserved: Reservation[]): BrakeState {
  const { reserved: _, ...rest } = state;
  return reserved.length ? { ...rest, reserved } : rest;
}

/** Deprovisions the state counts in its hour: the counted accounts and every slot taken ahead. */
export function countedInHour(state: BrakeState): number {
  return state.counted.length + (state.reserved ?? []).reduce((n, r) => n + r.count, 0);
}

/**
 * Asks to deprovision one account. An account counts once per hour however many operations its
 * deprovisioning takes (disable, group removals, delete), so a leaver is one, not five. With
 * `reserve`, a free slot of its own is filled without a write first, and a count that must be
 * written first takes slots ahead for the next ones.
 */
export function requestDeprovision(
  current: BrakeState,
  account: string,
  limit: number,
  now: number,
  reserve?: Reserve,
): { state: BrakeState; decision: BrakeDecision; persist: Persist } {
  const state = prune(current, now, reserve?.by);
  const allowed = { allowed: true } as const;
  const count = (s: BrakeState) => ({ ...s, counted: [...s.counted, { account, at: stamp(now) }] });
  if (state.counted.some((c) => c.account === account)) return { state, decision: allowed, persist: "later" };
  if (state.released.includes(account)) return { state: count(state), decision: allowed, persist: "before" };
  if (state.held.length === 0) {
    const used = countedInHour(state);
    // A slot already counts; filling it is no new count, unless the limit has dropped below them.
    const own = reserve ? (state.reserved?.findIndex((r) => r.by === reserve.by) ?? -1) : -1;
    if (own >= 0 && used <= limit) {
      const reserved = state.reserved!.flatMap((r, i) =>
        i !== own ? [r] : r.count > 1 ? [{ ...r, count: r.count - 1 }] : [],
      );
      return { state: withSlots(count(state), reserved), decision: allowed, persist: "later" };
    }
    if (used < limit) {
      const ahead = reserve ? Math.min(reserve.slots, limit - used - 1) : 0;
      const next =
        ahead > 0
          ? withReservation(count(state), {
              by: reserve!.by,
              until: stamp(now + reserve!.forMs),
              count: ahead,
            })
          : count(state);
      return { state: next, decision: allowed, persist: "before" };
    }
  }
  const held = state.held.some((h) => h.account === account)
    ? state.held
    : [...state.held, { account, at: stamp(now) }];
  return {
    state: { ...state, held },
    decision: { allowed: false, held: held.length, limit },
    persist: "before",
  };
}

/**
 * The slots to take ahead now, while `reserve.by`'s own still last: once half of `reserve.slots`
 * or fewer are left unfilled (and the brake is not latched), as many as bring them back to
 * `reserve.slots`, within the limit. Stored before any of them is filled, as every slot is; a
 * steady stream of deprovisions then never waits for a write, and no more than `reserve.slots` of
 * one term are ever unfilled at once (what a crash can over-count stays as `reserveSlots` says).
 */
export function topUp(
  state: BrakeState,
  limit: number,
  now: number,
  reserve: Reserve,
): Reservation | undefined {
  if (reserve.slots <= 0 || state.held.length > 0) return undefined;
  const current = prune(state, now, reserve.by);
  const own = (current.reserved ?? []).reduce((n, r) => n + (r.by === reserve.by ? r.count : 0), 0);
  if (own * 2 > reserve.slots) return undefined;
  const count = Math.min(reserve.slots - own, limit - countedInHour(current));
  return count > 0 ? { by: reserve.by, until: stamp(now + reserve.forMs), count } : undefined;
}

/** The state with `slots` added (taken by topUp, once stored). */
export function withReservation(state: BrakeState, slots: Reservation): BrakeState {
  return withSlots(state, [...(state.reserved ?? []), slots]);
}

/** `by`'s slots given back (it stops, and knows they were never filled). */
export function releaseReserved(state: BrakeState, by: string): BrakeState {
  if (!state.reserved?.some((r) => r.by === by)) return state;
  return withSlots(
    state,
    state.reserved.filter((r) => r.by !== by),
  );
}

/** The account needs no deprovisioning any more (rehired, done, gone): it is neither held nor released. */
export function withdrawDeprovision(state: BrakeState, account: string): BrakeState {
  if (!state.held.some((h) => h.account === account) && !state.released.includes(account)) return state;
  return {
    ...state,
    held: state.held.filter((h) => h.account !== account),
    released: state.released.filter((a) => a !== account),
  };
}

export type ApprovalOutcome =
  { approved: true; released: number; state: BrakeState } | { approved: false; reason: string };

/**
 * An approval must name exactly the number held: it releases those accounts and no others, and
 * gives no credit for deprovisions held later.
 */
export function approveDeprovisions(state: BrakeState, value: string): ApprovalOutcome {
  const held = state.held.length;
  if (held === 0)
    return { approved: false, reason: `approval ${JSON.stringify(value)} refused: nothing is held` };
  if (value.trim() !== String(held))
    return {
      approved: false,
      reason: `approval ${JSON.stringify(value)} refused: it must equal the number of held deprovisions, ${held}; nothing was released`,
    };
  return {
    approved: true,
    released: held,
    state: { ...state, held: [], released: [...state.released, ...state.held.map((h) => h.account)] },
  };
}
