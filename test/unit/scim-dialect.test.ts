import { describe, expect, it } from "vitest";
import {
  readError,
  readListResponse,
  readPatchOperations,
  readResourceTypes,
  readServiceProviderConfig,
  toBoolean,
  toCount,
  ownershipKey,
  toId,
} from "../../src/connectors/scim/dialect.ts";

describe("SCIM dialect tolerance", () => {
  it("reads booleans given as strings in any case", () => {
    expect([true, false, "true", "True", "FALSE", " false "].map(toBoolean)).toEqual([
      true,
      false,
      true,
      true,
      false,
      false,
    ]);
    expect([undefined, null, "yes", 1, 0].map(toBoolean)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it("takes an ownership key (externalId) only as a JSON string", () => {
    expect(ownershipKey("1001")).toBe("1001");
    expect(ownershipKey("00123")).toBe("00123");
    expect(ownershipKey(1001)).toBeUndefined();
    expect(ownershipKey(1e21)).toBeUndefined();
    expect(ownershipKey(1001n)).toBeUndefined();
    expect(ownershipKey("")).toBeUndefined();
    expect(ownershipKey(["1001"])).toBeUndefined();
  });

  it("turns ids into opaque strings without parsing them", () => {
    expect(toId(12345)).toBe("12345");
    expect(toId("00123")).toBe("00123");
    expect(toId(9007199254740993n)).toBe("9007199254740993");
    expect(toId("")).toBeUndefined();
    expect(toId(null)).toBeUndefined();
    expect(toId({ id: 1 })).toBeUndefined();
    expect(toCount("12")).toBe(12);
    expect(toCount(-1)).toBeUndefined();
  });

  it("reads ListResponses: Resources may be missing when totalResults is 0, names in any case", () => {
    expect(readListResponse({ totalResults: 0, itemsPerPage: 0, startIndex: 1 })).toEqual({
      resources: [],
      totalResults: 0,
      startIndex: 1,
      itemsPerPage: 0,
    });
    expect(readListResponse({ TotalResults: "2", resources: [{ id: 1 }, { id: "b" }] })).toMatchObject({
      resources: [{ id: 1 }, { id: "b" }],
      totalResults: 2,
    });
    // A page is never taken as empty when the service says there is more.
    expect(() => readListResponse({ totalResults: 3 })).toThrow(/without Resources/);
    expect(() => readListResponse({ totalResults: 1, Resources: {} })).toThrow(/not a list/);
    expect(() => readListResponse("oops")).toThrow(/ListResponse/);
  });

  it("reads PatchOp operations with capitalised op names", () => {
    expect(
      readPatchOperations({
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        operations: [
          { Op: "Replace", Path: "active", Value: "False" },
          { op: "ADD", path: "members", value: [{ value: "1" }] },
          { op: "Remove", path: 'members[value eq "1"]' },
        ],
      }),
    ).toEqual([
      { op: "replace", path: "active", value: "False" },
      { op: "add", path: "members", value: [{ value: "1" }] },
      { op: "remove", path: 'members[value eq "1"]' },
    ]);
    expect(() => readPatchOperations({ Operations: [{ op: "merge" }] })).toThrow(/unknown op/);
  });

  it("reads ServiceProviderConfig and ResourceTypes tolerantly", () => {
    expect(
      readServiceProviderConfig({
        Patch: { Supported: "True" },
        filter: { supported: "false", maxResults: "50" },
        etag: { supported: true },
        authenticationSchemes: [{ type: "oauthbearertoken" }],
      }),
    ).toEqual({
      discovered: true,
      patch: true,
      filter: false,
      maxResults: 50,
      sort: false,
      etag: true,
      bulk: false,
      changePassword: false,
      authenticationSchemes: ["oauthbearertoken"],
    });
    expect(readServiceProviderConfig({ patch: { supported: "FALSE" } }).patch).toBe(false);
    // Unknown: PATCH assumed.
    expect(readServiceProviderConfig(undefined)).toMatchObject({ discovered: false, patch: true });
    const types = [
      { id: "User", endpoint: "/Users", schema: "urn:x", schemaExtensions: [{ schema: "urn:e" }] },
    ];
    expect(readResourceTypes({ totalResults: 1, Resources: types })).toEqual([
      { name: "User", endpoint: "/Users", schema: "urn:x", schemaExtensions: ["urn:e"] },
    ]);
    expect(readResourceTypes(types)).toHaveLength(1);
  });

  it("reads error details", () => {
    expect(readError({ status: "409", scimType: "uniqueness", detail: "taken" })).toEqual({
      scimType: "uniqueness",
      detail: "taken",
    });
    expect(readError({ Detail: "x" })).toEqual({ detail: "x" });
    expect(readError(undefined)).toEqual({});
  });
});
