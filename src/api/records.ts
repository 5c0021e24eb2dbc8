// Reading the string maps of the API objects (labels, annotations, Employee attributes).

/**
 * record[key] when the record itself has it. A plain object inherits `constructor`, `toString`
 * and more, and label keys, attribute names and HR mapping targets may be spelled so: a selector
 * `constructor Exists` must not match everyone.
 */
export function ownValue(
  record: Readonly<Record<string, string>> | undefined,
  key: string,
): string | undefined {
  return record && Object.hasOwn(record, key) ? record[key] : undefined;
}
