// The write fence: how a connector makes sure it may still write (the operator's fence exits the
// process once the leader Lease may have been lost).
//
// A connector takes the fence in one place, the base (createConnector's options), which checks it
// before every write primitive. A write may still wait after that check, inside its transport
// (SCIM request pacing, retry backoff or a Retry-After; an LDAP reconnect and bind), long enough for
// the Lease to lapse. So transports call checkFence() right before each write request leaves: it
// checks the fence of the base write in progress again, found through the async context (there is
// no other path for the fence into a transport, and reads outside a write are never fenced).
import { AsyncLocalStorage } from "node:async_hooks";

export type Fence = () => void;

const inProgress = new AsyncLocalStorage<Fence>();

/** Checks `fence`, then runs the write `fn` with it as the fence that checkFence() checks. */
export function fencedWrite<T>(fence: Fence, fn: () => Promise<T>): Promise<T> {
  fence();
  return inProgress.run(fence, fn);
}

/** For transports, right before a write request is sent: throws (or exits) to stop it. */
export function checkFence(): void {
  inProgress.getStore()?.();
}
