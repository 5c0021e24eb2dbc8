// Status of AccessPolicies and GroupRules: how many people they match, whether their match is
// valid, whether they are paused. One queue per kind, debounced behind bursts of Employee changes.
import type { CustomApi } from "../kube/api.ts";
import type { Logger } from "pino";
import type { AccessPolicy, Employee, GroupRule } from "../api/types.ts";
import { groupRuleStatus, policyStatus } from "./summary.ts";
import type { UnmanagedGroup } from "../plan/scan.ts";
import { writeStatus } from "../kube/client.ts";
import { WorkQueue, keyOf, splitKey } from "./queue.ts";
import { COUNTS_MAX_MS, TrailingDebounce } from "./debounce.ts";

export type PolicyStatusOptions = {
  logger: Logger;
  custom: CustomApi;
  getPolicy(namespace: string, name: string): AccessPolicy | undefined;
  getRule(namespace: string, name: string): GroupRule | undefined;
  policies(namespace: string): readonly AccessPolicy[];
  rules(namespace: string): readonly GroupRule[];
  employees(namespace: string): readonly Employee[];
  /** A group's hand-added members in a connector, from its last full scan. */
  unmanaged(namespace: string, connector: string, group: string): UnmanagedGroup | undefined;
};

const DEBOUNCE_MS = 1000;

export class PolicyStatusController {
  readonly policyQueue: WorkQueue;
  readonly ruleQueue: WorkQueue;
  private readonly options: PolicyStatusOptions;
  private readonly counts: TrailingDebounce;

  constructor(options: PolicyStatusOptions) {
    this.options = options;
    this.policyQueue = new WorkQueue({ name: "accesspolicy", logger: options.logger });
    this.ruleQueue = new WorkQueue({ name: "grouprule", logger: options.logger });
    this.counts = new TrailingDebounce(
      (namespace) => {
        for (const p of this.options.policies(namespace)) this.policyQueue.add(keyOf(p));
        for (const r of this.options.rules(namespace)) this.ruleQueue.add(keyOf(r));
      },
      DEBOUNCE_MS,
      COUNTS_MAX_MS,
    );
  }

  /** Every policy and rule of the namespace, after the debounce. */
  enqueueNamespace(namespace: string): void {
    this.counts.cancel(namespace);
    for (const p of this.options.policies(namespace)) this.policyQueue.addAfter(keyOf(p), DEBOUNCE_MS);
    for (const r of this.options.rules(namespace)) this.ruleQueue.addAfter(keyOf(r), DEBOUNCE_MS);
  }

  /**
   * Employees changed, which changes only counts here (matched Employees, members): written once
   * they are quiet for a second, and at least every COUNTS_MAX_MS while they are not. Validity
   * and pause follow the policy or rule itself (enqueuePolicy, enqueueRule), at once.
   */
  countsChanged(namespace: string): void {
    this.counts.touch(namespace);
  }

  enqueuePolicy(policy: AccessPolicy): void {
    this.policyQueue.add(keyOf(policy));
  }

  enqueueRule(rule: GroupRule): void {
    this.ruleQueue.add(keyOf(rule));
  }

  run(): Promise<void> {
    const o = this.options;
    return Promise.all([
      this.policyQueue.run(1, async (key) => {
        const { namespace, name } = splitKey(key);
        const policy = o.getPolicy(namespace, name);
        if (policy)
          await writeStatus(
            o.custom,
            "accesspolicies",
            policy,
            policyStatus(policy, o.employees(namespace), new Date()),
          );
      }),
      this.ruleQueue.run(1, async (key) => {
        const { namespace, name } = splitKey(key);
        const rule = o.getRule(namespace, name);
        if (rule)
          await writeStatus(
            o.custom,
            "grouprules",
            rule,
            groupRuleStatus(
              rule,
              o.employees(namespace),
              o.policies(namespace),
              o.rules(namespace),
              new Date(),
              (connector) => o.unmanaged(namespace, connector, rule.spec.group),
            ),
          );
      }),
    ]).then(() => undefined);
  }

  shutdown(): Promise<void> {
    this.counts.clear();
    return Promise.all([this.policyQueue.shutdown(), this.ruleQueue.shutdown()]).then(() => undefined);
  }
}
