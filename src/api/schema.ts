// The one source of the roster.dev/v1alpha1 API: JSON schemas (TypeBox) from which both the
// TypeScript types (types.ts) and the CRDs (crds/*.yaml, via `npm run gen`) are derived.
import { Type, type TSchema } from "@sinclair/typebox";

export const GROUP = "roster.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** On Employees: deprovisioning runs before the object goes. */
export const DEPROVISION_FINALIZER = `${GROUP}/deprovision`;
/** On Connectors: the Connector stays while Employees own accounts through it. */
export const CONNECTOR_FINALIZER = `${GROUP}/accounts`;
/** On the Secrets a Connector names: they stay while the Connector needs them to deprovision. */
export const SECRET_FINALIZER = `${GROUP}/connector-credentials`;

type Rule = { rule: string; message: string; fieldPath?: string; reason?: string };
const rules = (...list: Rule[]) => ({ "x-kubernetes-validations": list });

function StringEnum<const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...options });
}

function StringMap(options: { maxProperties: number; maxValueLength: number; description: string }) {
  return Type.Unsafe<Record<string, string>>({
    type: "object",
    description: options.description,
    maxProperties: options.maxProperties,
    additionalProperties: { type: "string", maxLength: options.maxValueLength },
  });
}

const immutable = (field: string) => rules({ rule: "self == oldSelf", message: `${field} is immutable` });

// RFC 3339 date (2026-01-31) or date-time (2026-01-31T09:00:00Z).
const DATE_PATTERN =
  "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$";
// Go-style durations, plus days: 30s, 15m, 720h, 30d, 1h30m.
export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$";
// A Kubernetes object name (DNS subdomain).
const NAME_PATTERN = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
const celTimestamp = (s: string) => `(size(${s}) == 10 ? timestamp(${s} + 'T00:00:00Z') : timestamp(${s}))`;

/** Employee spec fields holding one string: what templates and HR column mappings can name. */
export const EMPLOYEE_STRING_FIELDS = [
  "employeeId",
  "username",
  "givenName",
  "familyName",
  "displayName",
  "email",
  "department",
  "title",
  "location",
  "costCenter",
  "manager",
  "employmentType",
  "employmentStatus",
  "startDate",
  "endDate",
] as const;

export const EMPLOYEE_FIELDS = [
  "department",
  "title",
  "location",
  "costCenter",
  "employmentType",
  "employmentStatus",
  "manager",
] as const;
export const MATCH_KEY_PATTERN = `^((${EMPLOYEE_FIELDS.join("|")})|attributes\\.[A-Za-z0-9_.-]{1,63})$`;

const ObjectName = (description: string) =>
  Type.String({ description, minLength: 1, maxLength: 253, pattern: NAME_PATTERN });
const GroupName = Type.String({ description: "A group's name in the target.", minLength: 1, maxLength: 256 });

export const SecretKeySelector = Type.Object(
  {
    name: ObjectName("Name of a Secret in the Connector's namespace."),
    key: Type.String({ description: "Key within the Secret.", minLength: 1, maxLength: 253 }),
  },
  { description: "A key of a Secret in the same namespace." },
);

export const Condition = Type.Object({
  type: Type.String({
    maxLength: 316,
    pattern:
      "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
  }),
  status: StringEnum(["True", "False", "Unknown"] as const),
  reason: Type.String({ maxLength: 1024, minLength: 1, pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$" }),
  message: Type.String({ maxLength: 32768 }),
  lastTransitionTime: Type.String({ format: "date-time" }),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
});

const Conditions = Type.Array(Condition, {
  description: "Standard conditions; Ready is always present once the operator has seen the object.",
  maxItems: 32,
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["type"],
});

const LabelSelectorRequirement = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 317 }),
    operator: StringEnum(["In", "NotIn", "Exists", "DoesNotExist"] as const),
    values: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 64 })),
  },
  rules({
    rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
    message: "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
  }),
);

export const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(
      StringMap({
        maxProperties: 64,
        maxValueLength: 63,
        description: "Labels that must all be present with these values.",
      }),
    ),
    matchExpressions: Type.Optional(Type.Array(LabelSelectorRequirement, { maxItems: 32 })),
  },
  { description: "A standard label selector over Employee labels.", "x-kubernetes-map-type": "atomic" },
);

export const MatchRequirement = Type.Object(
  {
    key: Type.String({
      description: `An Employee field (${EMPLOYEE_FIELDS.join(", ")}) or attributes.<name>.`,
      maxLength: 80,
      pattern: MATCH_KEY_PATTERN,
    }),
    operator: StringEnum(["In", "NotIn", "Exists", "DoesNotExist", "Matches"] as const),
    values: Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 64 })),
  },
  rules(
    {
      rule: "self.operator in ['Exists', 'DoesNotExist'] ? !has(self.values) || size(self.values) == 0 : has(self.values) && size(self.values) > 0",
      message: "values must be non-empty for In, NotIn and Matches, and empty for Exists and DoesNotExist",
    },
    {
      // Evaluating each expression makes a malformed one an admission error (RE2 syntax).
      rule: "self.operator != 'Matches' || self.values.all(v, ''.matches(v) == ''.matches(v))",
      message: "values of a Matches requirement must be valid regular expressions",
    },
  ),
);

const Match = Type.Array(MatchRequirement, {
  description: "Requirements over Employee fields; all must hold.",
  maxItems: 32,
});

// --- Employee -------------------------------------------------------------------------------

export const EMPLOYMENT_TYPES = ["Employee", "Contractor", "Intern", "Vendor"] as const;
export const EMPLOYMENT_STATUSES = ["Active", "OnLeave", "Terminated"] as const;
export const EMPLOYEE_PHASES = [
  "Pending",
  "Scheduled",
  "Active",
  "Suspended",
  "Deprovisioned",
  "Failed",
] as const;
export const ACCOUNT_STATES = [
  "Active",
  "Disabled",
  "Deleted",
  "Pending",
  "Failed",
  "Unlinked",
  "Conflict",
  "Protected",
  "Held",
] as const;

export const EmployeeGrant = Type.Object({
  connector: ObjectName("The Connector the grant applies to."),
  groups: Type.Optional(Type.Array(GroupName, { maxItems: 64 })),
  until: Type.Optional(
    Type.String({
      description: "RFC 3339 date or date-time after which the grant no longer applies.",
      maxLength: 64,
      pattern: DATE_PATTERN,
    }),
  ),
});

const PersonName = (description: string) => Type.String({ description, minLength: 1, maxLength: 256 });
const OptionalText = (description: string) => Type.Optional(Type.String({ description, maxLength: 256 }));

export const EmployeeSpec = Type.Object(
  {
    employeeId: Type.String({
      description: "Correlation key in every target (LDAP employeeNumber, SCIM externalId). Immutable.",
      minLength: 1,
      maxLength: 128,
      pattern: "^\\S(.*\\S)?$",
      ...immutable("employeeId"),
    }),
    username: Type.String({
      description: "Login name. Immutable.",
      minLength: 1,
      maxLength: 64,
      pattern: "^[a-z][a-z0-9._-]{0,63}$",
      ...immutable("username"),
    }),
    givenName: PersonName("Given name."),
    familyName: PersonName("Family name."),
    displayName: Type.Optional(
      Type.String({ description: "Display name; defaults to givenName familyName.", maxLength: 256 }),
    ),
    email: Type.String({
      description: "Work email address.",
      minLength: 3,
      maxLength: 254,
      pattern: "^[^@\\s]+@[^@\\s]+$",
    }),
    department: OptionalText("Department."),
    title: OptionalText("Job title."),
    location: OptionalText("Office or region."),
    costCenter: OptionalText("Cost center."),
    manager: Type.Optional(
      Type.String({
        description: "The manager's username.",
        maxLength: 64,
        pattern: "^[a-z][a-z0-9._-]{0,63}$",
      }),
    ),
    employmentType: Type.Optional(StringEnum(EMPLOYMENT_TYPES, { default: "Employee" })),
    employmentStatus: Type.Optional(StringEnum(EMPLOYMENT_STATUSES, { default: "Active" })),
    startDate: Type.Optional(
      Type.String({
        description: "RFC 3339 date or date-time; no access before it.",
        maxLength: 64,
        pattern: DATE_PATTERN,
      }),
    ),
    endDate: Type.Optional(
      Type.String({
        description: "RFC 3339 date or date-time; at or after it the person is treated as Terminated.",
        maxLength: 64,
        pattern: DATE_PATTERN,
      }),
    ),
    attributes: Type.Optional(
      Type.Unsafe<Record<string, string>>({
        type: "object",
        description: "Further HR attributes that rules may match on (attributes.<name>).",
        maxProperties: 64,
        additionalProperties: { type: "string", maxLength: 1024 },
        ...rules({
          rule: "self.all(k, k.matches('^[A-Za-z0-9_.-]{1,63}$'))",
          message: "attribute names must match ^[A-Za-z0-9_.-]{1,63}$",
        }),
      }),
    ),
    grants: Type.Optional(
      Type.Array(EmployeeGrant, { description: "Individual grants, optionally time-bound.", maxItems: 64 }),
    ),
  },
  rules({
    rule: `!has(self.startDate) || !has(self.endDate) || ${celTimestamp("self.endDate")} >= ${celTimestamp("self.startDate")}`,
    message: "endDate must not be before startDate",
    fieldPath: ".endDate",
  }),
);

/** What Roster does to an account in a target (src/plan/plan.ts Operation). */
export const ACCOUNT_OPERATIONS = [
  "create",
  "update",
  "set_password",
  "link",
  "enable",
  "disable",
  "group_add",
  "group_remove",
  "delete",
] as const;

/** Most accounts this many changes back are enough to answer "since when, and why". */
export const ACCOUNT_HISTORY_LIMIT = 10;

export const AccountChange = Type.Object({
  time: Type.String({ format: "date-time" }),
  operation: StringEnum(ACCOUNT_OPERATIONS),
  detail: Type.String({ maxLength: 1024, description: "What changed, e.g. added to group sales." }),
  reason: Type.String({
    maxLength: 64,
    description:
      "Why: joiner, employee change, start date, leaver, suspended, policy edit, grant expired, drift correction, adoption link or resync.",
  }),
  source: Type.Optional(
    Type.String({
      maxLength: 1024,
      description:
        "The entitlement sources behind it (AccessPolicy/<name>, GroupRule/<name>, Grant), comma-separated.",
    }),
  ),
  changeId: Type.String({
    maxLength: 64,
    description: "The id of the change's audit record in the operator's log.",
  }),
});

export const AccountStatus = Type.Object({
  connector: Type.String({ maxLength: 253 }),
  id: Type.Optional(
    Type.String({ description: "The account's identifier in the target (DN or SCIM id).", maxLength: 2048 }),
  ),
  state: StringEnum(ACCOUNT_STATES),
  groups: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 256 })),
  lastSyncTime: Type.Optional(Type.String({ format: "date-time" })),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
  history: Type.Optional(
    Type.Array(AccountChange, {
      maxItems: ACCOUNT_HISTORY_LIMIT,
      description:
        "The account's last changes, newest first (each also an audit record in the operator's log).",
    }),
  ),
});

export const Entitlement = Type.Object({
  connector: Type.String({ maxLength: 253 }),
  group: Type.Optional(Type.String({ maxLength: 256 })),
  source: Type.String({ description: "AccessPolicy/<name>, GroupRule/<name> or Grant.", maxLength: 300 }),
});

export const EmployeeStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  phase: Type.Optional(StringEnum(EMPLOYEE_PHASES)),
  accounts: Type.Optional(Type.Array(AccountStatus, { maxItems: 64 })),
  entitlements: Type.Optional(Type.Array(Entitlement, { maxItems: 1024 })),
  provisionedAt: Type.Optional(Type.String({ format: "date-time" })),
  deprovisionedAt: Type.Optional(Type.String({ format: "date-time" })),
  conditions: Type.Optional(Conditions),
});

// --- AccessPolicy ---------------------------------------------------------------------------

export const PolicyGrant = Type.Object({
  connector: ObjectName("The Connector in which matching people get an account."),
  groups: Type.Optional(Type.Array(GroupName, { maxItems: 64 })),
});

export const AccessPolicySpec = Type.Object({
  selector: Type.Optional(LabelSelector),
  match: Type.Optional(Match),
  grants: Type.Array(PolicyGrant, {
    description: "Accounts and groups given to every matching person.",
    minItems: 1,
    maxItems: 64,
  }),
});

export const AccessPolicyStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  matchedEmployees: Type.Optional(Type.Integer({ minimum: 0 })),
  conditions: Type.Optional(Conditions),
});

// --- GroupRule ------------------------------------------------------------------------------

export const GroupRuleSpec = Type.Object({
  group: GroupName,
  selector: Type.Optional(LabelSelector),
  match: Type.Optional(Match),
  connectors: Type.Array(ObjectName("A Connector the group is pushed to."), { minItems: 1, maxItems: 32 }),
  membership: Type.Optional(StringEnum(["Authoritative", "Additive"] as const, { default: "Authoritative" })),
});

/** Hand-added members of a group Roster hands out (accounts without an ownership key). */
const UnmanagedMembersFields = {
  action: StringEnum(["Remove", "Keep"] as const, {
    description:
      "Remove: an Authoritative GroupRule names the group, so these members are removed through the mass-change brake. Keep: they stay.",
  }),
  count: Type.Integer({ minimum: 0 }),
  members: Type.Array(Type.String({ maxLength: 256 }), {
    maxItems: 50,
    description: "Usernames of the first 50, sorted.",
  }),
};

export const GroupRuleStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  memberCount: Type.Optional(Type.Integer({ minimum: 0 })),
  unmanagedMembers: Type.Optional(
    Type.Array(Type.Object({ connector: Type.String({ maxLength: 253 }), ...UnmanagedMembersFields }), {
      maxItems: 32,
      description: "Per connector, members of the group that Roster did not add (as its last full scan saw).",
    }),
  ),
  conditions: Type.Optional(Conditions),
});

// --- Connector ------------------------------------------------------------------------------

const DN = (description: string) => Type.String({ description, minLength: 1, maxLength: 1024 });
const Duration = (description: string, def?: string) =>
  Type.String({ description, maxLength: 32, pattern: DURATION_PATTERN, ...(def ? { default: def } : {}) });

export const LdapSpec = Type.Object({
  url: Type.String({
    description: "ldap:// or ldaps:// URL.",
    maxLength: 1024,
    pattern: "^ldaps?://[^\\s]+$",
  }),
  startTLS: Type.Optional(Type.Boolean({ default: false })),
  caSecretRef: Type.Optional(SecretKeySelector),
  insecureSkipTLSVerify: Type.Optional(
    Type.Boolean({ description: "Skip TLS certificate verification (never in production).", default: false }),
  ),
  bindDN: DN("DN the operator binds as."),
  bindPasswordSecretRef: SecretKeySelector,
  usersDN: DN("Subtree where person entries are created and managed."),
  groupsDN: DN("Subtree where groups are created and managed."),
  // No schema defaults for these three: they depend on the flavor (settings.ts applies them).
  userObjectClasses: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
      minItems: 1,
      maxItems: 16,
      description: "Object classes of person entries (default: inetOrgPerson; ActiveDirectory: user).",
    }),
  ),
  groupObjectClass: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 128,
      description: "Object class of groups (default: groupOfNames; ActiveDirectory: group).",
    }),
  ),
  usernameAttribute: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: "^[A-Za-z][A-Za-z0-9-]*$",
      description:
        "Attribute holding the username (default: uid, also the RDN; ActiveDirectory: sAMAccountName, entries are named CN=<cn>).",
    }),
  ),
  attributes: Type.Optional(
    StringMap({
      maxProperties: 64,
      maxValueLength: 1024,
      description:
        "Target attribute -> template over Employee fields, e.g. cn: '{{givenName}} {{familyName}}'.",
    }),
  ),
  flavor: Type.Optional(StringEnum(["OpenLDAP", "ActiveDirectory"] as const, { default: "OpenLDAP" })),
});

export const ScimSpec = Type.Object({
  baseURL: Type.String({
    description: "The SCIM service's base URL.",
    maxLength: 2048,
    pattern: "^https?://[^\\s]+$",
  }),
  tokenSecretRef: SecretKeySelector,
  caSecretRef: Type.Optional(SecretKeySelector),
  insecureSkipTLSVerify: Type.Optional(Type.Boolean({ default: false })),
  requestsPerSecond: Type.Optional(Type.Number({ minimum: 0.1, maximum: 10000, default: 10 })),
  attributes: Type.Optional(
    StringMap({
      maxProperties: 64,
      maxValueLength: 1024,
      description: "SCIM attribute path -> template over Employee fields.",
    }),
  ),
});

export const ConnectorSpec = Type.Object(
  {
    ldap: Type.Optional(LdapSpec),
    scim: Type.Optional(ScimSpec),
    deprovisioning: Type.Optional(
      Type.Object(
        {
          action: Type.Optional(StringEnum(["Disable", "Delete"] as const, { default: "Disable" })),
          deleteAfter: Type.Optional(
            Duration("With action Delete: how long a leaver stays disabled before the account is deleted."),
          ),
        },
        { default: { action: "Disable" } },
      ),
    ),
    safety: Type.Optional(
      Type.Object(
        {
          maxDeprovisionsPerHour: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000000, default: 20 })),
          maxDeprovisionPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 10 })),
        },
        { default: {} },
      ),
    ),
    drift: Type.Optional(
      Type.Object(
        {
          policy: Type.Optional(StringEnum(["Correct", "Report"] as const, { default: "Correct" })),
          resyncInterval: Type.Optional(
            Duration("How often every managed account is read and compared.", "10m"),
          ),
        },
        { default: {} },
      ),
    ),
    orphans: Type.Optional(
      StringEnum(["Ignore", "Report", "Disable", "Delete"] as const, { default: "Report" }),
    ),
    paused: Type.Optional(Type.Boolean({ default: false })),
    credentials: Type.Optional(StringEnum(["None", "GeneratedSecret"] as const, { default: "None" })),
    adoption: Type.Optional(
      Type.Object(
        {
          match: Type.Optional(StringEnum(["None", "Username", "Email"] as const, { default: "None" })),
          mode: Type.Optional(StringEnum(["Propose", "Automatic"] as const, { default: "Propose" })),
        },
        {
          default: {},
          description:
            "How accounts that existed before Roster (no ownership key) are linked to Employees: matched by username or email, proposed for approval (annotation roster.dev/adopt) or linked automatically.",
        },
      ),
    ),
    protected: Type.Optional(
      Type.Object(
        {
          usernames: Type.Optional(
            Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 1000 }),
          ),
          groups: Type.Optional(
            Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 1000 }),
          ),
        },
        {
          description:
            "Break-glass and administrator accounts: an account with one of these usernames, or a member of one of these groups, is never adopted, modified, disabled or deleted by Roster.",
        },
      ),
    ),
  },
  rules(
    {
      rule: "has(self.ldap) != has(self.scim)",
      message: "exactly one of spec.ldap or spec.scim must be set",
    },
    {
      rule: "!has(self.adoption) || !has(self.adoption.mode) || self.adoption.mode != 'Automatic' || (has(self.adoption.match) && self.adoption.match != 'None')",
      message: "adoption.mode Automatic needs adoption.match Username or Email",
      fieldPath: ".adoption.mode",
    },
  ),
);

const BrakeEntry = Type.Object({
  account: Type.String({ maxLength: 512 }),
  at: Type.String({ format: "date-time" }),
});

export const ConnectorStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  managedAccounts: Type.Optional(Type.Integer({ minimum: 0 })),
  orphanAccounts: Type.Optional(
    Type.Object({
      count: Type.Integer({ minimum: 0 }),
      ids: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 50 })),
    }),
  ),
  driftedAccounts: Type.Optional(Type.Integer({ minimum: 0 })),
  heldDeprovisions: Type.Optional(Type.Integer({ minimum: 0 })),
  adoptionCandidates: Type.Optional(Type.Integer({ minimum: 0 })),
  unmanagedMembers: Type.Optional(
    Type.Array(Type.Object({ group: Type.String({ maxLength: 1024 }), ...UnmanagedMembersFields }), {
      maxItems: 200,
      description:
        "Per group that a policy, rule or grant hands out, members Roster did not add (as the last full scan saw).",
    }),
  ),
  deprovisioning: Type.Optional(
    Type.Object(
      {
        counted: Type.Optional(Type.Array(BrakeEntry, { maxItems: 100000 })),
        held: Type.Optional(Type.Array(BrakeEntry, { maxItems: 100000 })),
        released: Type.Optional(Type.Array(Type.String({ maxLength: 512 }), { maxItems: 100000 })),
        scheduled: Type.Optional(
          Type.Array(
            Type.Object({
              account: Type.String({ maxLength: 512 }),
              employeeId: Type.String({ maxLength: 256 }),
              username: Type.String({ maxLength: 256 }),
              id: Type.String({ maxLength: 2048 }),
              deleteAt: Type.String({ format: "date-time" }),
            }),
            { maxItems: 100000 },
          ),
        ),
        reserved: Type.Optional(
          Type.Array(
            Type.Object({
              by: Type.String({ maxLength: 64 }),
              until: Type.String({ format: "date-time" }),
              count: Type.Integer({ minimum: 0, maximum: 100000 }),
            }),
            { maxItems: 1000 },
          ),
        ),
      },
      {
        description:
          "The mass-change brake's state, kept here so that a restart or a failover neither releases nor forgets it: accounts counted in the last hour, slots counted ahead of deprovisions (reserved: each counts as one until an hour after its until, so a leaver need not wait for this write), accounts held for approval, accounts released by an approval, and deletions (deprovisioning.deleteAfter) handed over by Employees that are gone.",
      },
    ),
  ),
  lastSyncTime: Type.Optional(Type.String({ format: "date-time" })),
  capabilities: Type.Optional(
    Type.Unsafe<Record<string, unknown>>({
      type: "object",
      description: "What discovery found (SCIM ServiceProviderConfig and ResourceTypes).",
      "x-kubernetes-preserve-unknown-fields": true,
    }),
  ),
  conditions: Type.Optional(Conditions),
});

// --- Kinds ----------------------------------------------------------------------------------

export type KindDefinition = {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  spec: TSchema;
  status: TSchema;
  printerColumns: { name: string; type: string; jsonPath: string; priority?: number; description?: string }[];
};

const readyColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
};
const ageColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

export const KINDS: KindDefinition[] = [
  {
    kind: "Employee",
    plural: "employees",
    singular: "employee",
    shortNames: ["emp"],
    spec: EmployeeSpec,
    status: EmployeeStatus,
    printerColumns: [
      { name: "Username", type: "string", jsonPath: ".spec.username" },
      { name: "Department", type: "string", jsonPath: ".spec.department" },
      { name: "Status", type: "string", jsonPath: ".spec.employmentStatus" },
      { name: "Phase", type: "string", jsonPath: ".status.phase" },
      readyColumn,
      ageColumn,
    ],
  },
  {
    kind: "AccessPolicy",
    plural: "accesspolicies",
    singular: "accesspolicy",
    shortNames: ["ap"],
    spec: AccessPolicySpec,
    status: AccessPolicyStatus,
    printerColumns: [
      { name: "Matched", type: "integer", jsonPath: ".status.matchedEmployees" },
      readyColumn,
      ageColumn,
    ],
  },
  {
    kind: "GroupRule",
    plural: "grouprules",
    singular: "grouprule",
    shortNames: ["gr"],
    spec: GroupRuleSpec,
    status: GroupRuleStatus,
    printerColumns: [
      { name: "Group", type: "string", jsonPath: ".spec.group" },
      { name: "Membership", type: "string", jsonPath: ".spec.membership" },
      { name: "Members", type: "integer", jsonPath: ".status.memberCount" },
      readyColumn,
      ageColumn,
    ],
  },
  {
    kind: "Connector",
    plural: "connectors",
    singular: "connector",
    shortNames: ["conn"],
    spec: ConnectorSpec,
    status: ConnectorStatus,
    printerColumns: [
      { name: "LDAP", type: "string", jsonPath: ".spec.ldap.url", priority: 1 },
      { name: "SCIM", type: "string", jsonPath: ".spec.scim.baseURL", priority: 1 },
      { name: "Managed", type: "integer", jsonPath: ".status.managedAccounts" },
      { name: "Orphans", type: "integer", jsonPath: ".status.orphanAccounts.count" },
      { name: "Drifted", type: "integer", jsonPath: ".status.driftedAccounts" },
      { name: "Held", type: "integer", jsonPath: ".status.heldDeprovisions" },
      readyColumn,
      ageColumn,
    ],
  },
];
