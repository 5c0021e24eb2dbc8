// The deprovisioning finalizer and status writes (kube-rs kube-runtime/src/finalizer.rs style).
// Finalizers are changed with JSON patches that carry a `test` op, so a patch built from a stale
// cached object fails instead of clobbering finalizers other controllers added or removed meanwhile;
// the caller re-reads and tries again. Both operations are idempotent.
import { PatchStrategy } from "@kubernetes/client-node";
import type { CustomApi } from "../kube/api.ts";
import { DEPROVISION_FINALIZER, GROUP, VERSION } from "../api/schema.ts";

export const FINALIZER = DEPROVISION_FINALIZER;

export type JsonPatchOp =
  | { op: "test"; path: string; value: unknown }
  | { op: "add"; path: string; value: unknown }
  | { op: "remove"; path: string };

/** What the helpers need of an object: usually the informer's cached copy. */
export type Finalizable = { metadata: { name: string; namespace?: string; finalizers?: string[] } };

/** The object changed since it was read (failed `test` op or resourceVersion): re-read and retry. */
export class ConflictError extends Error {
  readonly code: number;
  constructor(message: string, code: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConflictError";
    this.code = code;
  }
}

export function hasFinalizer(obj: Finalizable, finalizer = FINALIZER): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

/** The patch that adds `finalizer`, or undefined when it is already there. */
export function addFinalizerPatch(
  finalizers: string[] | undefined,
  finalizer = FINALIZER,
): JsonPatchOp[] | undefined {
  if (finalizers?.includes(finalizer)) return undefined;
  if (!finalizers) {
    // An absent list reads as null to a JSON-patch `test`.
    return [
      { op: "test", path: "/metadata/finalizers", value: null },
      { op: "add", path: "/metadata/finalizers", value: [finalizer] },
    ];
  }
  return [
    { op: "test", path: "/metadata/finalizers", value: finalizers },
    { op: "add", path: "/metadata/finalizers/-", value: finalizer },
  ];
}

/** The patch that removes `finalizer`, or undefined when it is not there. */
export function removeFinalizerPatch(
  finalizers: string[] | undefined,
  finalizer = FINALIZER,
): JsonPatchOp[] | undefined {
  const i = finalizers?.indexOf(finalizer) ?? -1;
  if (i < 0) return undefined;
  // Testing the element at the index makes removal safe even if the list shifted meanwhile.
  return [
    { op: "test", path: `/metadata/finalizers/${i}`, value: finalizer },
    { op: "remove", path: `/metadata/finalizers/${i}` },
  ];
}

export const jsonPatch = PatchStrategy.JsonPatch;
const mergePatch = PatchStrategy.MergePatch;

/**
 * A resourceVersion mismatch comes back as 409. A failed `test` op (or a path that no longer exists)
 * comes back as a bare 422 "the server rejected our request due to an error in our request" with no
 * field causes, unlike a schema violation, whose 422 names the fields. For the patches built here
 * both mean "stale", not "invalid".
 */
export function asConflict(error: unknown, jsonPatch: boolean): unknown {
  const e = error as { code?: number; body?: unknown };
  let status: { message?: string; details?: { causes?: unknown[] } } = {};
  try {
    status = typeof e.body === "string" ? JSON.parse(e.body) : ((e.body as typeof status) ?? {});
  } catch {
    // not a Status object
  }
  const staleTest = jsonPatch && e.code === 422 && !status.details?.causes?.length;
  if (e.code === 409 || staleTest) {
    return new ConflictError(`stale object: ${status.message ?? String(error)}`, e.code!, { cause: error });
  }
  return error;
}

async function patch<T>(api: CustomApi, plural: string, obj: Finalizable, ops: JsonPatchOp[]): Promise<T> {
  try {
    return (await api.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural,
        namespace: obj.metadata.namespace ?? "",
        name: obj.metadata.name,
        body: ops,
      },
      jsonPatch,
    )) as T;
  } catch (error) {
    throw asConflict(error, true);
  }
}

/**
 * Adds the finalizer to a roster.dev object (`plural`: "employees", ...) unless `obj` already has
 * it. Returns the patched object, or `obj` when nothing was to do. Throws ConflictError when `obj`
 * is stale.
 */
export async function addFinalizer<T extends Finalizable>(
  api: CustomApi,
  plural: string,
  obj: T,
  finalizer = FINALIZER,
): Promise<T> {
  const ops = addFinalizerPatch(obj.metadata.finalizers, finalizer);
  return ops ? patch<T>(api, plural, obj, ops) : obj;
}

/**
 * Removes the finalizer (after cleanup). On an object being deleted this may be the last one, and
 * the API server then deletes the object. Throws ConflictError when `obj` is stale.
 */
export async function removeFinalizer<T extends Finalizable>(
  api: CustomApi,
  plural: string,
  obj: T,
  finalizer = FINALIZER,
): Promise<T> {
  const ops = removeFinalizerPatch(obj.metadata.finalizers, finalizer);
  return ops ? patch<T>(api, plural, obj, ops) : obj;
}

/**
 * Writes `status` through the /status subresource with a JSON merge patch (custom resources reject
 * strategic merge). Merge semantics: keys not given are kept, `null` deletes, lists are replaced.
 */
export async function patchStatus<T = unknown>(
  api: CustomApi,
  plural: string,
  namespace: string,
  name: string,
  status: Record<string, unknown>,
): Promise<T> {
  try {
    return (await api.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural, namespace, name, body: { status } },
      mergePatch,
    )) as T;
  } catch (error) {
    throw asConflict(error, false);
  }
}
