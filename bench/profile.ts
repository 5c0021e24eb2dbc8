// CPU profiles of the operator per bench phase, over the inspector protocol (the operator is
// started with --inspect on loopback when the bench runs with --profile), and a summary of where
// the time went: self time by function, and inclusive time of the operator's own (src/) functions.
// The bench runs the operator compiled (dist/, see buildOperator): its frames are shown as src/
// paths with the compiled file's line numbers.
import { writeFileSync } from "node:fs";

type CallFrame = { functionName: string; url: string; lineNumber: number; columnNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[]; hitCount?: number };
export type CpuProfile = {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
};

export type ProfileLine = { fn: string; where: string; ms: number; percent: number };
export type ProfileSummary = {
  file: string;
  seconds: number;
  busyPercent: number;
  /** Self time by module (native frames count for the nearest JavaScript caller's module). */
  byModule: ProfileLine[];
  self: ProfileLine[];
  inclusiveSrc: ProfileLine[];
};

/** The operator's own code: the sources, or their compiled copy; not a dependency's dist/. */
const OWN = { test: (url: string) => /\/(src|dist)\//.test(url) && !url.includes("/node_modules/") };

export class Profiler {
  private readonly ws: WebSocket;
  private id = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      const msg = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: unknown };
      if (msg.id !== undefined)
        this.pending.get(msg.id)?.(msg.error ? Promise.reject(msg.error) : msg.result);
    });
  }

  static async connect(inspectPort: number): Promise<Profiler> {
    const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error("inspector connection failed")), { once: true });
    });
    const p = new Profiler(ws);
    await p.send("Profiler.enable");
    await p.send("Profiler.setSamplingInterval", { interval: 1000 });
    await p.send("HeapProfiler.enable");
    return p;
  }

  send(method: string, params: object = {}): Promise<unknown> {
    const id = ++this.id;
    return new Promise((resolve) => {
      this.pending.set(id, (result) => {
        this.pending.delete(id);
        resolve(result);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  start(): Promise<unknown> {
    return this.send("Profiler.start");
  }

  async stop(file: string): Promise<ProfileSummary> {
    const { profile } = (await this.send("Profiler.stop")) as { profile: CpuProfile };
    writeFileSync(file, JSON.stringify(profile));
    return summarize(profile, file);
  }

  startHeapSampling(): Promise<unknown> {
    return this.send("HeapProfiler.startSampling", { samplingInterval: 65536 });
  }

  collectGarbage(): Promise<unknown> {
    return this.send("HeapProfiler.collectGarbage");
  }

  async heap(): Promise<HeapSummary> {
    const { profile } = (await this.send("HeapProfiler.getSamplingProfile")) as {
      profile: { head: HeapNode };
    };
    return summarizeHeap(profile.head);
  }

  close(): void {
    this.ws.close();
  }
}

export function summarize(profile: CpuProfile, file: string, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++)
    hits.set(samples[i]!, (hits.get(samples[i]!) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0) / 1000);
  const label = (f: CallFrame) => ({
    fn: f.functionName || "(anonymous)",
    where: `${f.url.replace(/^file:\/\/.*?\/(src|dist|node_modules)\//, (_, dir: string) => (dir === "dist" ? "src/" : `${dir}/`))}:${f.lineNumber + 1}`,
  });
  const total = (profile.endTime - profile.startTime) / 1000;
  const moduleOf = (url: string) => {
    if (!url) return "";
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (nm) return nm[1]!;
    const src = /\/(?:src|dist)\/([^/]+(?:\/[^/]+)?)\//.exec(url) ?? /\/(?:src|dist)\/([^/]+)$/.exec(url);
    if (src) return `src/${src[1]!}`;
    const internal = /^node:(?:internal\/)?(?:deps\/)?([^/]+)/.exec(url);
    if (internal) return `node:${internal[1]}`;
    return url;
  };
  const modules = new Map<string, ProfileLine>();
  let idle = 0;
  const self = new Map<string, ProfileLine>();
  const inclusive = new Map<string, ProfileLine>();
  for (const [id, ms] of hits) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === "(idle)") {
      idle += ms;
      continue;
    }
    let mod = "";
    for (let cur: number | undefined = id; cur !== undefined && !mod; cur = parent.get(cur))
      mod = moduleOf(byId.get(cur)!.callFrame.url);
    if (!mod) mod = node.callFrame.functionName; // (program), (garbage collector)
    const me = modules.get(mod) ?? { fn: mod, where: "", ms: 0, percent: 0 };
    me.ms += ms;
    modules.set(mod, me);
    const l = label(node.callFrame);
    const key = `${l.fn} ${l.where}`;
    const entry = self.get(key) ?? { ...l, ms: 0, percent: 0 };
    entry.ms += ms;
    self.set(key, entry);
    // Inclusive time of src/ functions: count each distinct one once per sample's stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (!OWN.test(f.url)) continue;
      const li = label(f);
      const k = `${li.fn} ${li.where}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const e = inclusive.get(k) ?? { ...li, ms: 0, percent: 0 };
      e.ms += ms;
      inclusive.set(k, e);
    }
  }
  const finish = (m: Map<string, ProfileLine>) =>
    [...m.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((l) => ({ ...l, ms: Math.round(l.ms), percent: Math.round((l.ms / total) * 1000) / 10 }));
  return {
    file,
    seconds: Math.round(total / 100) / 10,
    busyPercent: Math.round(((total - idle) / total) * 1000) / 10,
    byModule: finish(modules),
    self: finish(self),
    inclusiveSrc: finish(inclusive),
  };
}

type HeapNode = { callFrame: CallFrame; selfSize: number; children: HeapNode[] };
export type HeapSummary = { sampledMiB: number; self: ProfileLine[]; inclusiveSrc: ProfileLine[] };

/** Live allocations by site from the sampling heap profiler (HeapProfiler.startSampling). */
export function summarizeHeap(head: HeapNode, top = 15): HeapSummary {
  const self = new Map<string, ProfileLine>();
  const inclusive = new Map<string, ProfileLine>();
  const label = (f: CallFrame) => ({
    fn: f.functionName || "(anonymous)",
    where: `${f.url.replace(/^file:\/\/.*?\/(src|dist|node_modules)\//, (_, dir: string) => (dir === "dist" ? "src/" : `${dir}/`))}:${f.lineNumber + 1}`,
  });
  let total = 0;
  const walk = (node: HeapNode, stack: string[]) => {
    const l = label(node.callFrame);
    const key = `${l.fn} ${l.where}`;
    const here = OWN.test(node.callFrame.url) && !stack.includes(key) ? [...stack, key] : stack;
    if (node.selfSize > 0) {
      total += node.selfSize;
      const e = self.get(key) ?? { ...l, ms: 0, percent: 0 };
      e.ms += node.selfSize;
      self.set(key, e);
      for (const k of here) {
        const [fn, where] = [k.slice(0, k.lastIndexOf(" ")), k.slice(k.lastIndexOf(" ") + 1)];
        const i = inclusive.get(k) ?? { fn, where, ms: 0, percent: 0 };
        i.ms += node.selfSize;
        inclusive.set(k, i);
      }
    }
    for (const c of node.children) walk(c, here);
  };
  walk(head, []);
  // `ms` holds bytes here; reported in KiB.
  const finish = (m: Map<string, ProfileLine>) =>
    [...m.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((l) => ({ ...l, ms: Math.round(l.ms / 1024), percent: Math.round((l.ms / total) * 1000) / 10 }));
  return {
    sampledMiB: Math.round((total / 2 ** 20) * 10) / 10,
    self: finish(self),
    inclusiveSrc: finish(inclusive),
  };
}
