// Reading an HR export: CSV with a header row (csv-parse) or JSON lines, record by record, each
// with the line it starts on, so that every refusal can name the file and line.
import { createInterface } from "node:readline";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { parse } from "csv-parse";
import { ownValue } from "../api/records.ts";

export type SourceFormat = "csv" | "jsonl";

export type SourceRecord = {
  /** 1-based line where the record starts. */
  line: number;
  /** Column (CSV header, JSON key) -> value; CSV values are strings. */
  values: Record<string, unknown>;
  /** Set when the record cannot be used at all (wrong field count, not JSON). */
  problem?: string;
};

/** A problem with the file as a whole (unclosed quote, bad header); names the line. */
export class SourceError extends Error {
  override name = "SourceError";
  readonly line: number | undefined;
  constructor(message: string, line?: number) {
    super(message);
    this.line = line;
  }
}

/** The format from `--format`, or else from the file's extension; undefined when unknown. */
export function detectFormat(path: string, explicit?: string): SourceFormat | undefined {
  if (explicit) {
    const f = explicit.toLowerCase();
    if (f === "csv") return "csv";
    if (f === "jsonl" || f === "ndjson" || f === "json") return "jsonl";
    return undefined;
  }
  const lower = path.toLowerCase();
  if (lower.endsWith(".csv")) return "csv";
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson") || lower.endsWith(".json")) return "jsonl";
  return undefined;
}

export type ReadOptions = {
  format: SourceFormat;
  /** CSV field delimiter (default ","). */
  delimiter?: string;
  /** Called with the CSV header row; may throw to refuse the file (e.g. a mapped column is missing). */
  onHeader?: (columns: string[], line: number) => void;
};

const toStream = (input: Readable | string): Readable =>
  typeof input === "string" ? Readable.from([input]) : input;

/** Yields the records of an export (for CSV, the header row is read first and not yielded). */
export async function* readRecords(
  input: Readable | string,
  options: ReadOptions,
): AsyncGenerator<SourceRecord, void, undefined> {
  if (options.format === "csv") yield* readCsv(toStream(input), options.delimiter ?? ",", options.onHeader);
  else yield* readJsonLines(toStream(input));
}

/** Passes bytes through and records the offset of every "\n", to turn byte offsets into lines. */
class LineIndex extends Transform {
  readonly newlines: number[] = [];
  private offset = 0;
  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, done: TransformCallback): void {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    for (let i = buffer.indexOf(10); i !== -1; i = buffer.indexOf(10, i + 1))
      this.newlines.push(this.offset + i);
    this.offset += buffer.length;
    done(null, buffer);
  }
  /** 1-based line of the byte at `offset`. */
  lineAt(offset: number): number {
    let [lo, hi] = [0, this.newlines.length];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.newlines[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  }
}

async function* readCsv(
  input: Readable,
  delimiter: string,
  onHeader: ReadOptions["onHeader"],
): AsyncGenerator<SourceRecord> {
  const parser = parse({
    bom: true,
    delimiter,
    info: true,
    skip_empty_lines: true,
    relax_column_count: true,
  });
  const index = new LineIndex();
  input.on("error", (error) => parser.destroy(error));
  index.on("error", (error) => parser.destroy(error));
  input.pipe(index).pipe(parser);
  let header: string[] | undefined;
  try {
    for await (const item of parser as AsyncIterable<{ info: { bytes: number }; record: string[] }>) {
      const fields = item.record;
      // info.bytes is the offset just past the record (and its line break); quoted line breaks
      // inside the record move its first line back.
      const newlines = fields.reduce((n, f) => n + (f.match(/\n/g)?.length ?? 0), 0);
      const line = index.lineAt(item.info.bytes - 1) - newlines;
      if (!header) {
        header = fields.map((f) => f.trim());
        const seen = new Set<string>();
        for (const [i, name] of header.entries()) {
          if (name === "") throw new SourceError(`header column ${i + 1} has no name`, line);
          if (seen.has(name)) throw new SourceError(`header names column "${name}" twice`, line);
          seen.add(name);
        }
        onHeader?.(header, line);
        continue;
      }
      if (fields.every((f) => f.trim() === "")) continue;
      const values: Record<string, unknown> = {};
      header.forEach((name, i) => {
        if (i < fields.length) values[name] = fields[i];
      });
      const record: SourceRecord = { line, values };
      if (fields.length !== header.length)
        record.problem = `has ${fields.length} fields, the header has ${header.length}`;
      yield record;
    }
  } catch (error) {
    if (error instanceof SourceError) throw error;
    const e = error as { message?: string; lines?: number };
    throw new SourceError(e.message ?? String(error), e.lines);
  }
  if (!header) throw new SourceError("the file is empty: expected a header row", 1);
}

async function* readJsonLines(input: Readable): AsyncGenerator<SourceRecord> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  for await (const raw of lines) {
    line++;
    const text = line === 1 ? raw.replace(/^\uFEFF/, "") : raw;
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      yield { line, values: {}, problem: `not valid JSON: ${(error as Error).message}` };
      continue;
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      yield { line, values: {}, problem: "not a JSON object" };
      continue;
    }
    yield { line, values: value as Record<string, unknown> };
  }
}

/**
 * The value of a column in a record as a trimmed string; undefined when absent or empty. JSON
 * values may be numbers or booleans; a dotted column name reaches into nested JSON objects.
 */
export function cell(values: Record<string, unknown>, column: string): string | undefined {
  let value: unknown = ownValue(values, column);
  if (value === undefined && column.includes(".")) {
    value = column.split(".").reduce<unknown>((v, part) => {
      if (v && typeof v === "object" && !Array.isArray(v))
        return ownValue(v as Record<string, unknown>, part);
      return undefined;
    }, values);
  }
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") {
    const trimmed = value.trim();
    return trimmed === "" ? undefined : trimmed;
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw new TypeError(`column "${column}" holds ${Array.isArray(value) ? "a list" : "an object"}`);
}
