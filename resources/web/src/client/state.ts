/**
 * The client's state tables: which state may follow which, for the client as a whole (its
 * public `state`) and for one run (one relay session and its recorder). Every change goes
 * through a checked transition, as the relay's `session_state.check_transition` does: an
 * illegal one is a bug in the client, never something a relay or a person can cause, so it
 * throws. Pure: no DOM, no socket (unit-tested in Node).
 */
import type { ClientState } from "./types";

/** Which client state may follow which. Staying put is always allowed. The client has no
 * terminal state: every state leads back to `idle`, and `idle` to a new start. */
export const CLIENT_TRANSITIONS = {
  // start()
  idle: ["starting"],
  // the relay accepted (live), refused or stop() came (idle); a restart after an encoder
  // failure whose connection dropped meanwhile (reconnecting: the next `connect` starts it)
  starting: ["live", "idle", "reconnecting"],
  // pause() or the browser suspended capture (paused); a drop (reconnecting, or idle when
  // socket.io will not reconnect); stop() or an encoder failure (stopping); a fatal error
  live: ["paused", "reconnecting", "stopping", "idle"],
  // resume() with the session (live) or after a drop while paused (starting: a new session)
  paused: ["live", "starting", "reconnecting", "stopping", "idle"],
  // resumed or a new session is live (live, or paused if it was); stop() with a session to
  // end (stopping) or without one (idle); the restart failed or a fatal error (idle)
  reconnecting: ["live", "paused", "stopping", "idle"],
  // stopped (idle), or after an encoder failure the MediaRecorder session starts (starting)
  stopping: ["idle", "starting"],
} as const satisfies Record<ClientState, readonly ClientState[]>;

/** Where one run (one relay session with its recorder) stands.
 * - `linked`: chunks go out as the recorder gives them;
 * - `unlinked`: the connection dropped; chunks wait in the resume buffer;
 * - `stopping`: the recorder is flushing and the relay is asked to end the session;
 * - `stopping-unlinked`: the same while the connection is down (stop() waits for it);
 * - `ended`: over on this side; nothing more goes out. Terminal. */
export type RunState = "linked" | "unlinked" | "stopping" | "stopping-unlinked" | "ended";

/** Which run state may follow which. Staying put is always allowed. */
export const RUN_TRANSITIONS = {
  // a drop (unlinked), stop() or an encoder failure (stopping), the relay ended it (ended)
  linked: ["unlinked", "stopping", "ended"],
  // the resume resent what the relay missed (linked), stop() during the drop
  unlinked: ["linked", "stopping-unlinked", "ended"],
  // a drop while stopping (stopping-unlinked), done (ended)
  stopping: ["stopping-unlinked", "ended"],
  // resumed to end it properly (stopping), or given up (ended)
  "stopping-unlinked": ["stopping", "ended"],
  ended: [],
} as const satisfies Record<RunState, readonly RunState[]>;

/** A state table: each state with the states that may follow it. */
export type TransitionTable<S extends string> = { readonly [K in S]: readonly S[] };

/** Thrown for a transition the table does not allow (a bug in the client). */
export class IllegalTransitionError extends Error {
  constructor(
    readonly who: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`${who}: no transition from ${from} to ${to}`);
    this.name = "IllegalTransitionError";
  }
}

/** Whether `to` may follow `from` in `table` (staying put may). */
export function canTransition<S extends string>(table: TransitionTable<S>, from: S, to: S): boolean {
  return from === to || (table[from] as readonly S[]).includes(to);
}

/** Return `to` if it may follow `from` in `table`, else throw IllegalTransitionError; `who`
 * names the machine in the message. */
export function transition<S extends string>(table: TransitionTable<S>, from: S, to: S, who = "client"): S {
  if (!canTransition(table, from, to)) throw new IllegalTransitionError(who, from, to);
  return to;
}

/** The states from which no other state follows. */
export function terminalStates<S extends string>(table: TransitionTable<S>): S[] {
  return (Object.keys(table) as S[]).filter((state) => table[state].length === 0);
}
