// Builds CustomResourceDefinitions from the schemas in schema.ts.
import { GROUP, KINDS, VERSION, type KindDefinition } from "./schema.ts";

/** A plain JSON copy: drops TypeBox's symbol keys and anything JSON cannot hold. */
function plain<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema)) as T;
}

export function customResourceDefinition(def: KindDefinition): Record<string, unknown> {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${def.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ["roster"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: `${def.kind} (${GROUP}/${VERSION}).`,
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: plain(def.spec),
                status: plain(def.status),
              },
            },
          },
        },
      ],
    },
  };
}

export function customResourceDefinitions(): Record<string, unknown>[] {
  return KINDS.map(customResourceDefinition);
}
