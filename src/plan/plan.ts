// The operations that take one account in one target from what it is to what it should be.
import type { ActualAccount, DesiredAccount } from "../connectors/types.ts";

export type Operation =
  | { op: "create"; account: DesiredAccount }
  | { op: "update"; changes: Record<string, string[] | null> }
  | { op: "set_password" }
  /** Write the ownership key on an account made before Roster (adoption). */
  | { op: "link"; id: string }
  | { op: "enable" }
  | { op: "disable" }
  | { op: "group_add"; group: string }
  | { op: "group_remove"; group: string }
  | { op: "delete" };

/** Operations that take access away: counted by the mass-change brake. */
export function isDeprovision(operation: Operation): boolean {
  return operation.op === "disable" || operation.op === "delete" || operation.op === "group_remove";
}

export type AccountPlanInput = {
  /** What the account should be; undefined when the person should hold no account here. */
  desired?: DesiredAccount;
  actual?: ActualAccount;
  /** Attributes Roster writes; others on the entry are left alone. */
  managedAttributes: readonly string[];
  /** Groups Roster manages in this target; membership in any other group is never touched. */
  managedGroups: ReadonlySet<string>;
  /** For an account that should go: delete it (rather than only disable it) now. */
  deleteNow: boolean;
  /** How the target compares group names (LDAP ignores case); exact by default. */
  groupKey?: (name: string) => string;
  /** The generated password was never set on the existing account (its setting failed after the create). */
  passwordPending?: boolean;
};

function sameValues(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if ((a?.length ?? 0) !== (b?.length ?? 0)) return false;
  // Most attributes hold one value: compared without sorting copies (a scan compares them all).
  if (a?.length === 1) return a[0] === b![0];
  const x = [...(a ?? [])].sort();
  const y = [...(b ?? [])].sort();
  return x.every((v, i) => v === y[i]);
}

export function attributeChanges(
  desired: Record<string, string[]>,
  actual: Record<string, string[]>,
  managed: readonly string[],
): Record<string, string[] | null> {
  const changes: Record<string, string[] | null> = {};
  for (const name of managed) {
    const want = desired[name];
    const have = actual[name];
    if (want && want.length > 0) {
      if (!sameValues(want, have)) changes[name] = want;
    } else if (have && have.length > 0) {
      changes[name] = null;
    }
  }
  return changes;
}

export function planAccount(input: AccountPlanInput): Operation[] {
  const { desired, actual } = input;
  const ops: Operation[] = [];
  if (desired) {
    if (!actual) return [{ op: "create", account: desired }];
    // The password first: an account is never enabled or put into groups before it has one.
    if (input.passwordPending) ops.push({ op: "set_password" });
    const changes = attributeChanges(desired.attributes, actual.attributes, input.managedAttributes);
    if (Object.keys(changes).length > 0) ops.push({ op: "update", changes });
    // Enable before adding groups, disable after removing them: access never widens early.
    if (desired.enabled && !actual.enabled) ops.push({ op: "enable" });
    const key = input.groupKey ?? ((name: string) => name);
    const have = new Set(actual.groups.map(key));
    const want = new Set(desired.groups.map(key));
    const managed = new Set([...input.managedGroups].map(key));
    for (const group of [...desired.groups].sort())
      if (!have.has(key(group))) ops.push({ op: "group_add", group });
    for (const group of [...actual.groups].sort())
      if (!want.has(key(group)) && managed.has(key(group))) ops.push({ op: "group_remove", group });
    if (!desired.enabled && actual.enabled) ops.push({ op: "disable" });
    return ops;
  }
  if (!actual) return [];
  if (actual.enabled) ops.push({ op: "disable" });
  const key = input.groupKey ?? ((name: string) => name);
  const managed = new Set([...input.managedGroups].map(key));
  for (const group of [...actual.groups].sort())
    if (managed.has(key(group))) ops.push({ op: "group_remove", group });
  if (input.deleteNow) ops.push({ op: "delete" });
  return ops;
}
