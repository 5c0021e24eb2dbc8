// The `roster` command. Exit codes: 0 success, 1 failure, 2 usage error.
import { parseArgs } from "node:util";
import { createLogger } from "../observe/logger.ts";
import { prettyDestination } from "../observe/pretty.ts";
import { runOperator } from "../controller/operator.ts";
import { refusedSelector } from "../controller/handover.ts";
import { HANDOVER_LEASE_PREFIX } from "../controller/shard.ts";
import { CliUsageError, loadKube } from "./kube.ts";

const USAGE = `Usage: roster <command> [flags]

Commands:
  operator   Run the operator (what the Deployment runs).
  dev        Bring up a local control plane and slapd, sample objects, and the operator.
  import     Turn an HR export (CSV, JSON lines) into Employees: files in a directory or applied.
  report     Access review from the cluster, with exceptions (leavers with access, orphans, drift).
  plan       What Roster would change if a directory of manifests were merged (no writes).
  test       Policy tests (AccessTest files) against a directory of manifests, with no cluster.
  explain    Why a person has, or does not have, each account and group.

Run 'roster <command> --help' for the flags of a command.
`;

const OPERATOR_HELP = `Usage: roster operator [flags]

Reconciles Employees into the targets their Connectors describe.

Flags:
  --kubeconfig PATH        kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --context NAME           kubeconfig context
  --namespace NS           watch only this namespace (default: all namespaces)
  --workers N              concurrent Employee reconciles (default 8)
  --leader-elect BOOL      elect a leader on a Lease so only one replica acts (default true)
  --lease-namespace NS     namespace of the Lease (default: $POD_NAMESPACE or roster-system)
  --lease-name NAME        (default roster-operator); with --shard-selector, the shard's own Lease
  --shard-selector SEL     act only in the namespaces whose labels match the label selector SEL:
                           one Deployment per shard, each with its own --lease-name, all with one
                           --lease-namespace; a namespace relabelled from one shard's selector to
                           another's is handed over (default: every namespace, one operator)
  --health-addr ADDR       /healthz and /readyz (default :8081)
  --metrics-addr ADDR      /metrics (default :8080)
  --log-level LEVEL        trace|debug|info|warn|error (default info)
  --log-format FORMAT      json|pretty (default json)

Examples:
  roster operator --kubeconfig ~/.kube/config --namespace people
  roster operator --leader-elect=false --metrics-addr 127.0.0.1:9090
  roster operator --shard-selector roster.dev/shard=eu --lease-name roster-shard-eu
`;

async function operatorCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      help: { type: "boolean", short: "h" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
      namespace: { type: "string", short: "n" },
      workers: { type: "string", default: "8" },
      "leader-elect": { type: "string", default: "true" },
      "lease-namespace": { type: "string", default: process.env.POD_NAMESPACE ?? "roster-system" },
      "lease-name": { type: "string", default: "roster-operator" },
      "health-addr": { type: "string", default: ":8081" },
      "metrics-addr": { type: "string", default: ":8080" },
      "log-level": { type: "string", default: "info" },
      "log-format": { type: "string", default: "json" },
      "connector-check-interval": { type: "string", default: "30" },
      "shard-selector": { type: "string" },
    },
  });
  if (values.help) {
    process.stdout.write(OPERATOR_HELP);
    return 0;
  }
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1)
    throw new CliUsageError(`--workers must be a positive integer, got ${values.workers}`);
  const shardSelector = values["shard-selector"];
  if (shardSelector !== undefined) {
    if (shardSelector.trim() === "")
      throw new CliUsageError(
        "--shard-selector is empty: it would select every namespace; leave it out instead",
      );
    if (values.namespace) throw new CliUsageError("--shard-selector and --namespace exclude each other");
    if (values["leader-elect"] === "false")
      throw new CliUsageError(
        "--shard-selector needs leader election: a shard's Lease is what fences its writes",
      );
    if (values["lease-name"]!.startsWith(HANDOVER_LEASE_PREFIX))
      throw new CliUsageError(
        `--lease-name must not start with ${HANDOVER_LEASE_PREFIX} (the handover Leases')`,
      );
  }
  const kubeconfig = loadKube({ kubeconfig: values.kubeconfig, context: values.context });
  const refused = shardSelector === undefined ? undefined : await refusedSelector(kubeconfig, shardSelector);
  if (refused !== undefined)
    throw new CliUsageError(`--shard-selector ${JSON.stringify(shardSelector)}: ${refused}`);
  const logger = createLogger({
    level: values["log-level"] as "info",
    ...(values["log-format"] === "pretty" ? { destination: prettyDestination() } : {}),
  });
  const operator = await runOperator({
    kubeconfig,
    logger,
    ...(values.namespace ? { namespace: values.namespace } : {}),
    workers,
    leaderElection: values["leader-elect"] !== "false",
    leaseNamespace: values["lease-namespace"]!,
    leaseName: values["lease-name"]!,
    healthAddress: values["health-addr"]!,
    metricsAddress: values["metrics-addr"]!,
    connectorCheckMs: Number(values["connector-check-interval"]) * 1000,
    ...(shardSelector !== undefined ? { shardSelector } : {}),
  });
  const onSignal = (signal: string) => {
    logger.info({ signal }, "shutting down");
    void operator.stop();
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  await operator.done;
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "operator":
      return operatorCommand(rest);
    case "dev":
      // In a source checkout bin/roster.js runs `roster dev` from the test harness (dev.ts there);
      // getting here means there is none (the container image, an installed package).
      process.stderr.write(
        "roster: roster dev runs from a source checkout; it is not part of the container image\n",
      );
      return 1;
    case "import": {
      const { importCommand } = await import("./import.ts");
      return importCommand(rest);
    }
    case "plan": {
      const { planCommand } = await import("./plan.ts");
      return planCommand(rest);
    }
    case "report": {
      const { reportCommand } = await import("./report.ts");
      return reportCommand(rest);
    }
    case "test": {
      const { testCommand } = await import("./test.ts");
      return testCommand(rest);
    }
    case "explain": {
      const { explainCommand } = await import("./explain.ts");
      return explainCommand(rest);
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`roster: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

/** Runs the command line of this process and exits with its code. */
export function run(): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const usage =
        error instanceof CliUsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
      process.stderr.write(`roster: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}
