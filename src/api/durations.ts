// Durations and dates as api.md writes them: durations like 30s, 15m, 720h, 30d, 2w, 1h30m;
// dates as a day (midnight UTC) or an RFC 3339 date-time.

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const WHOLE = /^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/;

/** Milliseconds of a duration; undefined when it is malformed. */
export function tryParseDuration(text: string): number | undefined {
  if (!WHOLE.test(text)) return undefined;
  let total = 0;
  for (const part of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g))
    total += Number(part[1]) * UNITS[part[2]!]!;
  return total;
}

/** Milliseconds of a duration; throws on a malformed one (admission refuses those). */
export function parseDuration(text: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) throw new Error(`invalid duration ${JSON.stringify(text)}`);
  return ms;
}
