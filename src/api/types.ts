// TypeScript types derived from the schemas in schema.ts.
import type { Static } from "@sinclair/typebox";
import type {
  AccessPolicySpec,
  AccessPolicyStatus,
  AccountStatus,
  Condition as ConditionSchema,
  ConnectorSpec,
  ConnectorStatus,
  EmployeeSpec,
  EmployeeStatus,
  Entitlement,
  GroupRuleSpec,
  GroupRuleStatus,
  LabelSelector,
  LdapSpec,
  MatchRequirement,
  ScimSpec,
  SecretKeySelector,
} from "./schema.ts";

export type Condition = Static<typeof ConditionSchema>;
export type SecretKeyRef = Static<typeof SecretKeySelector>;
export type LabelSelectorSpec = Static<typeof LabelSelector>;
export type MatchRequirementSpec = Static<typeof MatchRequirement>;

export type EmployeeSpecT = Static<typeof EmployeeSpec>;
export type EmployeeStatusT = Static<typeof EmployeeStatus>;
export type AccountStatusT = Static<typeof AccountStatus>;
export type EntitlementT = Static<typeof Entitlement>;
export type AccessPolicySpecT = Static<typeof AccessPolicySpec>;
export type AccessPolicyStatusT = Static<typeof AccessPolicyStatus>;
export type GroupRuleSpecT = Static<typeof GroupRuleSpec>;
export type GroupRuleStatusT = Static<typeof GroupRuleStatus>;
export type ConnectorSpecT = Static<typeof ConnectorSpec>;
export type ConnectorStatusT = Static<typeof ConnectorStatus>;
export type LdapSpecT = Static<typeof LdapSpec>;
export type ScimSpecT = Static<typeof ScimSpec>;

export type ObjectMeta = {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
};

export type Resource<Kind extends string, Spec, Status> = {
  apiVersion: string;
  kind: Kind;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
};

export type Employee = Resource<"Employee", EmployeeSpecT, EmployeeStatusT>;
export type AccessPolicy = Resource<"AccessPolicy", AccessPolicySpecT, AccessPolicyStatusT>;
export type GroupRule = Resource<"GroupRule", GroupRuleSpecT, GroupRuleStatusT>;
export type Connector = Resource<"Connector", ConnectorSpecT, ConnectorStatusT>;
export type RosterObject = Employee | AccessPolicy | GroupRule | Connector;
