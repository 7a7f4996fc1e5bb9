import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  canTransition,
  CLIENT_TRANSITIONS,
  IllegalTransitionError,
  RUN_TRANSITIONS,
  type RunState,
  terminalStates,
  transition,
  type TransitionTable,
} from "../src/client/state";
import type { ClientState } from "../src/client/types";

const CLIENT_STATES: ClientState[] = ["idle", "starting", "live", "paused", "stopping", "reconnecting"];
const RUN_STATES: RunState[] = ["linked", "unlinked", "stopping", "stopping-unlinked", "ended"];

/** The states reachable from `from` (itself included). */
function reachable<S extends string>(table: TransitionTable<S>, from: S): Set<S> {
  const seen = new Set<S>([from]);
  const todo = [from];
  while (todo.length > 0) {
    for (const next of table[todo.pop() as S]) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

/** Every allowed transition passes, every other one throws, staying put passes. */
function checkTable<S extends string>(table: TransitionTable<S>, states: S[], who: string): number {
  let checked = 0;
  for (const from of states) {
    for (const to of states) {
      const allowed = from === to || (table[from] as readonly S[]).includes(to);
      assert.equal(canTransition(table, from, to), allowed, `${from} -> ${to}`);
      if (allowed) {
        assert.equal(transition(table, from, to, who), to);
      } else {
        assert.throws(
          () => transition(table, from, to, who),
          (err: unknown) =>
            err instanceof IllegalTransitionError &&
            err.from === from &&
            err.to === to &&
            err.message === `${who}: no transition from ${from} to ${to}`,
          `${from} -> ${to} must throw`,
        );
      }
      checked += 1;
    }
  }
  return checked;
}

describe("CLIENT_TRANSITIONS", () => {
  it("names every client state and only those, as sources and as targets", () => {
    assert.deepEqual(Object.keys(CLIENT_TRANSITIONS).sort(), [...CLIENT_STATES].sort());
    for (const targets of Object.values(CLIENT_TRANSITIONS)) {
      for (const to of targets) assert.ok(CLIENT_STATES.includes(to), to);
    }
  });

  it("allows every listed transition and staying put, and throws on every other", () => {
    assert.equal(checkTable(CLIENT_TRANSITIONS, CLIENT_STATES, "client"), 36);
  });

  it("has the transitions the client makes", () => {
    const allowed = (from: ClientState, to: ClientState): boolean => canTransition(CLIENT_TRANSITIONS, from, to);
    // start(), pause(), resume(), stop()
    assert.ok(allowed("idle", "starting"));
    assert.ok(allowed("starting", "live"));
    assert.ok(allowed("live", "paused") && allowed("paused", "live"));
    assert.ok(allowed("live", "stopping") && allowed("paused", "stopping") && allowed("stopping", "idle"));
    // a drop, then a resume (live or paused) or a new session
    assert.ok(allowed("live", "reconnecting") && allowed("paused", "reconnecting"));
    assert.ok(allowed("reconnecting", "live") && allowed("reconnecting", "paused"));
    // resume() after a drop while paused starts a new session
    assert.ok(allowed("paused", "starting"));
    // after an encoder failure: the old session stops, a MediaRecorder one starts
    assert.ok(allowed("stopping", "starting"));
    // a fatal error ends the stream from wherever it is
    for (const from of ["starting", "live", "paused", "reconnecting", "stopping"] as const) {
      assert.ok(allowed(from, "idle"), `${from} -> idle`);
    }
  });

  it("refuses shortcuts that would skip the relay's answer or the stop", () => {
    const refused: [ClientState, ClientState][] = [
      ["idle", "live"],
      ["idle", "paused"],
      ["idle", "stopping"],
      ["idle", "reconnecting"],
      ["starting", "paused"],
      ["starting", "stopping"],
      ["stopping", "live"],
      ["stopping", "paused"],
      ["stopping", "reconnecting"],
      ["reconnecting", "starting"],
      ["live", "starting"],
    ];
    for (const [from, to] of refused) {
      assert.throws(() => transition(CLIENT_TRANSITIONS, from, to), IllegalTransitionError, `${from} -> ${to}`);
    }
  });

  it("has no terminal state: every state leads back to idle, and idle to a start", () => {
    assert.deepEqual(terminalStates(CLIENT_TRANSITIONS), []);
    for (const state of CLIENT_STATES) {
      assert.ok(reachable(CLIENT_TRANSITIONS, state).has("idle"), `${state} reaches idle`);
    }
    assert.deepEqual([...CLIENT_TRANSITIONS.idle], ["starting"]);
  });
});

describe("RUN_TRANSITIONS", () => {
  it("names every run state and only those, as sources and as targets", () => {
    assert.deepEqual(Object.keys(RUN_TRANSITIONS).sort(), [...RUN_STATES].sort());
    for (const targets of Object.values(RUN_TRANSITIONS)) {
      for (const to of targets) assert.ok(RUN_STATES.includes(to), to);
    }
  });

  it("allows every listed transition and staying put, and throws on every other", () => {
    assert.equal(checkTable(RUN_TRANSITIONS, RUN_STATES, "run"), 25);
  });

  it("ends in `ended` only, reachable from every state, and leaves it never", () => {
    assert.deepEqual(terminalStates(RUN_TRANSITIONS), ["ended"]);
    for (const state of RUN_STATES) assert.ok(reachable(RUN_TRANSITIONS, state).has("ended"), state);
    for (const to of RUN_STATES.filter((s) => s !== "ended")) {
      assert.throws(() => transition(RUN_TRANSITIONS, "ended", to, "run"), /run: no transition from ended to/);
    }
  });

  it("never goes back from stopping to streaming", () => {
    for (const from of ["stopping", "stopping-unlinked"] as const) {
      for (const to of ["linked", "unlinked"] as const) {
        assert.equal(canTransition(RUN_TRANSITIONS, from, to), false, `${from} -> ${to}`);
      }
    }
  });

  it("links and unlinks within streaming and within stopping", () => {
    assert.ok(canTransition(RUN_TRANSITIONS, "linked", "unlinked"));
    assert.ok(canTransition(RUN_TRANSITIONS, "unlinked", "linked"));
    assert.ok(canTransition(RUN_TRANSITIONS, "stopping", "stopping-unlinked"));
    assert.ok(canTransition(RUN_TRANSITIONS, "stopping-unlinked", "stopping"));
    assert.ok(canTransition(RUN_TRANSITIONS, "unlinked", "stopping-unlinked"));
  });
});
