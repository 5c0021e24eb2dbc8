// Reading the string maps of the API objects (labels, annotations, Employee attributes) and the
// records of an HR export.

/**
 * record[key] when the record itself has it. A plain object inherits `constructor`, `toString`
 * and more, and label keys, attribute names, HR columns and HR mapping targets may be spelled so:
 * a selector `constructor Exists` must not match everyone.
 */
export function ownValue<T = string>(
  record: Readonly<Record<string, T>> | undefined,
  key: string,
): T | undefined {
  return record && Object.hasOwn(record, key) ? record[key] : undefined;
}
