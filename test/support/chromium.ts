// Opens a page in headless Chromium (Debian's chromium package) over the DevTools protocol, with
// Node's own WebSocket: what a reader sees (innerText honours CSS), what the console said, and a
// screenshot.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export type PageVisit = {
  /** document.title and the innerText of each selector asked for. */
  title: string;
  text: Record<string, string>;
  /** Console messages and log entries of level error or warning (CSP violations are errors). */
  problems: string[];
  /** PNG of the whole page. */
  screenshot: Buffer;
  /** The page as printed (print stylesheet): its PDF. */
  pdf: Buffer;
};

type Message = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: unknown;
};

export async function visitPage(file: string, selectors: string[]): Promise<PageVisit> {
  const profile = mkdtempSync(join(tmpdir(), "roster-chromium-"));
  const browser = spawn(
    "chromium",
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-extensions",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  try {
    const port = await new Promise<string>((resolve, reject) => {
      let err = "";
      browser.stderr.on("data", (chunk: Buffer) => {
        err += chunk.toString();
        const m = /DevTools listening on ws:\/\/[^:]+:(\d+)\//.exec(err);
        if (m) resolve(m[1]!);
      });
      browser.on("exit", (code) => reject(new Error(`chromium exited ${code}:\n${err}`)));
    });
    const target = (await (
      await fetch(`http://127.0.0.1:${port}/json/new?about:blank`, { method: "PUT" })
    ).json()) as {
      webSocketDebuggerUrl: string;
    };
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    let next = 0;
    const pending = new Map<number, (m: Message) => void>();
    const events: Message[] = [];
    const waiters: { method: string; resolve: () => void }[] = [];
    ws.onmessage = (event) => {
      const m = JSON.parse(String(event.data)) as Message;
      if (m.id !== undefined) pending.get(m.id)?.(m);
      else {
        events.push(m);
        for (const w of waiters.filter((w) => w.method === m.method)) w.resolve();
      }
    };
    const send = (method: string, params: Record<string, unknown> = {}) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const id = ++next;
        pending.set(id, (m) =>
          m.error
            ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`))
            : resolve(m.result as Record<string, unknown>),
        );
        ws.send(JSON.stringify({ id, method, params }));
      });
    const evaluate = async (expression: string) =>
      (
        (await send("Runtime.evaluate", { expression, returnByValue: true })) as {
          result: { value: unknown };
        }
      ).result.value;

    await Promise.all([send("Page.enable"), send("Runtime.enable"), send("Log.enable")]);
    const loaded = new Promise<void>((resolve) => waiters.push({ method: "Page.loadEventFired", resolve }));
    await send("Page.navigate", { url: pathToFileURL(file).href });
    await loaded;

    const text: Record<string, string> = {};
    for (const selector of selectors)
      text[selector] = String(
        await evaluate(
          `document.querySelector(${JSON.stringify(selector)})?.innerText ?? "(no such element)"`,
        ),
      );
    const title = String(await evaluate("document.title"));
    const { height } = (await evaluate("({ height: Math.ceil(document.documentElement.scrollHeight) })")) as {
      height: number;
    };
    await send("Emulation.setDeviceMetricsOverride", {
      width: 1280,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    });
    const shot = (await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true })) as {
      data: string;
    };
    const pdf = (await send("Page.printToPDF", {})) as { data: string };

    const problems = events.flatMap((m) => {
      if (m.method === "Runtime.consoleAPICalled") {
        const p = m.params as { type: string; args: { value?: unknown; description?: string }[] };
        return p.type === "error" || p.type === "warning"
          ? [`console.${p.type}: ${p.args.map((a) => a.value ?? a.description).join(" ")}`]
          : [];
      }
      if (m.method === "Runtime.exceptionThrown") return [`exception: ${JSON.stringify(m.params)}`];
      if (m.method === "Log.entryAdded") {
        const entry = (m.params as { entry: { level: string; text: string; source: string } }).entry;
        return entry.level === "error" || entry.level === "warning"
          ? [`${entry.source} ${entry.level}: ${entry.text}`]
          : [];
      }
      return [];
    });
    ws.close();
    return {
      title,
      text,
      problems,
      screenshot: Buffer.from(shot.data, "base64"),
      pdf: Buffer.from(pdf.data, "base64"),
    };
  } finally {
    browser.kill("SIGKILL");
    await new Promise((resolve) =>
      browser.exitCode !== null ? resolve(null) : browser.once("exit", resolve),
    );
    rmSync(profile, { recursive: true, force: true });
  }
}
