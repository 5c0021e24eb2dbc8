import { describe, expect, it } from "vitest";
import { staleFiles, renderedCrds } from "../../src/api/gen.ts";
import { setCondition } from "../../src/api/conditions.ts";
import { load } from "js-yaml";

describe("CRDs", () => {
  it("crds/ matches the API source (run `npm run gen` when this fails)", () => {
    expect(staleFiles()).toEqual([]);
  });

  it("every kind has the roster category, a short name, a status subresource and printer columns", () => {
    for (const text of renderedCrds().values()) {
      const crd = load(text) as {
        spec: {
          names: { categories: string[]; shortNames: string[] };
          versions: { subresources: object; additionalPrinterColumns: unknown[] }[];
        };
      };
      expect(crd.spec.names.categories).toEqual(["roster"]);
      expect(crd.spec.names.shortNames.length).toBe(1);
      expect(crd.spec.versions[0]!.subresources).toEqual({ status: {} });
      expect(crd.spec.versions[0]!.additionalPrinterColumns.length).toBeGreaterThanOrEqual(3);
    }
  });
});

describe("setCondition", () => {
  const t0 = new Date("2026-01-01T00:00:00.123Z");
  const t1 = new Date("2026-01-01T01:00:00Z");

  it("adds a condition with a second-precision transition time", () => {
    const list = setCondition(
      undefined,
      { type: "Ready", status: "False", reason: "Pending", message: "m" },
      t0,
    );
    expect(list).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "Pending",
        message: "m",
        lastTransitionTime: "2026-01-01T00:00:00Z",
      },
    ]);
  });

  it("keeps lastTransitionTime when the status does not change, even if reason and message do", () => {
    const first = setCondition(
      undefined,
      { type: "Ready", status: "False", reason: "Pending", message: "a" },
      t0,
    );
    const second = setCondition(
      first,
      { type: "Ready", status: "False", reason: "TargetError", message: "b", observedGeneration: 2 },
      t1,
    );
    expect(second[0]).toMatchObject({
      reason: "TargetError",
      message: "b",
      observedGeneration: 2,
      lastTransitionTime: "2026-01-01T00:00:00Z",
    });
  });

  it("moves lastTransitionTime when the status flips and leaves other conditions alone", () => {
    let list = setCondition(
      undefined,
      { type: "Drifted", status: "False", reason: "InSync", message: "" },
      t0,
    );
    list = setCondition(list, { type: "Ready", status: "False", reason: "Pending", message: "" }, t0);
    list = setCondition(list, { type: "Ready", status: "True", reason: "Provisioned", message: "" }, t1);
    expect(list.map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([
      ["Drifted", "False", "2026-01-01T00:00:00Z"],
      ["Ready", "True", "2026-01-01T01:00:00Z"],
    ]);
  });
});

describe("sameStatus", () => {
  it("ignores key order, as the API server sorts keys", async () => {
    const { sameStatus } = await import("../../src/api/conditions.ts");
    expect(
      sameStatus(
        { phase: "Active", accounts: [{ state: "Active", connector: "c" }] },
        { accounts: [{ connector: "c", state: "Active" }], phase: "Active" },
      ),
    ).toBe(true);
    expect(sameStatus({ phase: "Active" }, { phase: "Failed" })).toBe(false);
    expect(sameStatus({ groups: ["a", "b"] }, { groups: ["b", "a"] })).toBe(false);
  });
});
