// What an account refers to in its own target (pure): the manager's account in the same Connector.
// RFC 7643 section 4.3 makes manager.value the manager's SCIM id, so the planner resolves
// Employee.spec.manager (a username) through the manager's Employee, whose status records the id of
// its account per Connector (a SCIM id, an LDAP DN); `{{managerId}}` in a mapping renders it.
import type { AccountStatusT, Employee, EmployeeSpecT } from "../api/types.ts";

/** Account states in which the recorded id is the manager's existing account. */
const EXISTING: ReadonlySet<AccountStatusT["state"]> = new Set(["Active", "Disabled", "Held", "Failed"]);

const byUsernameMemo = new WeakMap<readonly Employee[], Map<string, Employee[]>>();

/** The namespace's Employees by username, memoized per snapshot (a scan resolves everyone's). */
function byUsername(employees: readonly Employee[]): Map<string, Employee[]> {
  let index = byUsernameMemo.get(employees);
  if (!index) {
    index = new Map();
    for (const e of employees) index.set(e.spec.username, [...(index.get(e.spec.username) ?? []), e]);
    byUsernameMemo.set(employees, index);
  }
  return index;
}

export type ManagerReference = {
  /** The id of the manager's account in the Connector. */
  id?: string;
  /** Why there is none, for the account's status message (undefined when there is no manager). */
  problem?: string;
};

export function managerReference(
  spec: EmployeeSpecT,
  connector: string,
  objects: {
    readonly employees: readonly Employee[];
    /** The Employees with a username, when the caller keeps an index (else one is built per snapshot). */
    withUsername?: (username: string) => readonly Employee[];
  },
): ManagerReference {
  if (!spec.manager) return {};
  const managers = objects.withUsername
    ? objects.withUsername(spec.manager)
    : (byUsername(objects.employees).get(spec.manager) ?? []);
  const ids = new Set<string>();
  for (const manager of managers) {
    const account = manager.status?.accounts?.find((a) => a.connector === connector);
    if (account?.id && EXISTING.has(account.state)) ids.add(account.id);
  }
  if (ids.size === 1) return { id: [...ids][0]! };
  return {
    problem:
      ids.size > 1
        ? `manager ${spec.manager} has ${ids.size} accounts in ${connector} (several Employees with that username): manager left unset`
        : `manager ${spec.manager} has no account in ${connector} yet: manager left unset`,
  };
}

/**
 * What managerReference reads of an Employee as a manager (its existing accounts' ids per
 * Connector), as a comparable string: when it changes, the Employees reporting to it need a look.
 */
export function referencedAccounts(employee: Employee | undefined): string {
  const accounts = employee?.status?.accounts ?? [];
  return JSON.stringify(
    accounts.filter((a) => a.id && EXISTING.has(a.state)).map((a) => [a.connector, a.id]),
  );
}
