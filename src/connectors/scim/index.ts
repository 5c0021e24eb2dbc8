// The SCIM 2.0 connector: see connector.ts for the behaviour, attributes.ts for the attribute mapping,
// client.ts for HTTP, pacing and retries, dialect.ts for what is read tolerantly.
export {
  createScimConnector,
  DEFAULT_REQUESTS_PER_SECOND,
  type ScimConnector,
  type ScimConnectorOptions,
} from "./connector.ts";
export {
  scimAttributes,
  scimManagedAttributes,
  scimTemplates,
  validateScimTemplates,
  parseScimPath,
  formatScimPath,
  readAttributes,
  patchOperations,
  DEFAULT_SCIM_TEMPLATES,
  ENTERPRISE_USER_SCHEMA,
  type ScimPath,
  type PatchOperation,
} from "./attributes.ts";
export { ScimHttpError, ScimUnavailableError } from "./client.ts";
export { type ScimCapabilities, type ScimResourceType } from "./dialect.ts";
export { eqFilter, scimString, valuePathFilter } from "./filter.ts";
export { TokenBucket, backoffDelay, parseRetryAfter } from "./ratelimit.ts";
