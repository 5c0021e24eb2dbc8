// Employee manifests in a directory: one file per person, `<metadata.name>.yaml`, keys sorted so
// that a re-import produces the same bytes and git diffs show only what changed.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { dump, loadAll } from "js-yaml";
import type { Employee } from "../api/types.ts";
import { PlanError, type ExistingEmployee, type PlannedChange } from "./diff.ts";

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** The YAML of one Employee: sorted keys, no line folding, trailing newline. */
export function toManifest(employee: Employee): string {
  return dump(sortKeys(employee), { lineWidth: -1, noRefs: true });
}

/** The file a planned change is written to: where it was read from, or `<name>.yaml`. */
export function manifestPath(dir: string, change: Pick<PlannedChange, "name" | "existing">): string {
  return change.existing?.file ?? join(dir, `${change.name}.yaml`);
}

export type DirectoryContents = {
  employees: ExistingEmployee[];
  /** File -> its text, to skip writes that would not change a byte. */
  texts: Map<string, string>;
};

/** Reads the Employees in the `*.yaml`/`*.yml` files of a directory (not recursive); other kinds are ignored. */
export async function readManifestDirectory(dir: string): Promise<DirectoryContents> {
  const contents: DirectoryContents = { employees: [], texts: new Map() };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return contents;
    throw error;
  }
  for (const name of names.filter((n) => /\.ya?ml$/i.test(n)).sort()) {
    const file = join(dir, name);
    const text = await readFile(file, "utf8");
    let docs: unknown[];
    try {
      docs = loadAll(text);
    } catch (error) {
      throw new PlanError(`${file}: ${(error as Error).message}`);
    }
    const employees = docs.filter(
      (d): d is Employee => !!d && typeof d === "object" && (d as { kind?: unknown }).kind === "Employee",
    );
    if (employees.length === 0) continue;
    if (docs.filter((d) => d !== null && d !== undefined).length > 1)
      throw new PlanError(`${file}: holds several documents; roster import keeps one Employee per file`);
    const employee = employees[0]!;
    if (!employee.metadata?.name || !employee.spec || typeof employee.spec !== "object")
      throw new PlanError(`${file}: the Employee has no metadata.name or spec`);
    if (employee.spec.employeeId === undefined || employee.spec.employeeId === null)
      throw new PlanError(`${file}: spec.employeeId is missing`);
    contents.employees.push({ employee, file });
    contents.texts.set(file, text);
  }
  return contents;
}
