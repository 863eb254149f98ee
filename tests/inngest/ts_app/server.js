// Inngest functions on the official npm SDK, served with Express, for Stepline's tests.
//
// Configured as a user configures an app: INNGEST_DEV=<Stepline's URL> (dev mode, and the
// server the SDK syncs to and sends events to). PORT is the port to serve on (127.0.0.1 only).
// Served at /api/inngest; GET /state reports what the functions did (step executions, times,
// what the failure handler received), which the tests compare with what Stepline recorded.
import express from "express";
import { Inngest, NonRetriableError, RetryAfterError } from "inngest";
import { serve } from "inngest/express";

const inngest = new Inngest({ id: "ts-tests" });

const state = { counts: {}, times: {}, inFlight: 0, maxInFlight: 0, failures: [] };

function count(name) {
  state.counts[name] = (state.counts[name] ?? 0) + 1;
  return state.counts[name];
}

function stamp(name) {
  (state.times[name] ??= []).push(Date.now());
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Several steps in sequence: each must run once however often the function is replayed.
const steps = inngest.createFunction(
  { id: "steps", triggers: [{ event: "ts/steps" }], retries: 0 },
  async ({ event, step }) => {
    count("steps:handler");
    const first = await step.run("first", () => count("first") && event.data.n + 1);
    const second = await step.run("second", () => count("second") && first * 2);
    const third = await step.run("third", () => count("third") && `${first}/${second}`);
    return { first, second, third };
  },
);

// A step that fails twice, then succeeds: retried alone.
const flaky = inngest.createFunction(
  { id: "flaky", triggers: [{ event: "ts/flaky" }], retries: 3 },
  async ({ step }) => {
    const first = await step.run("first", () => count("flaky:first") && "first");
    const second = await step.run("flaky", () => {
      const attempt = count("flaky:flaky");
      if (attempt < 3) throw new Error(`attempt ${attempt} fails`);
      return "ok";
    });
    return `${first}-${second}`;
  },
);

// A step that keeps failing: the run fails with the step's error once retries are spent.
const broken = inngest.createFunction(
  { id: "broken", triggers: [{ event: "ts/broken" }], retries: 1 },
  async ({ step }) => {
    await step.run("call-vendor", () => {
      count("broken");
      throw new TypeError("vendor API down");
    });
  },
);

// NonRetriableError thrown by the function itself, and by a step.
const nope = inngest.createFunction(
  { id: "nope", triggers: [{ event: "ts/nope" }], retries: 4 },
  async () => {
    count("nope");
    throw new NonRetriableError("foo");
  },
);

const nopeStep = inngest.createFunction(
  { id: "nope-step", triggers: [{ event: "ts/nope-step" }], retries: 4 },
  async ({ step }) => {
    await step.run("refuse", () => {
      count("nope-step");
      throw new NonRetriableError("not again");
    });
  },
);

// RetryAfterError: the retry comes no sooner than asked (not the server's short backoff).
const later = inngest.createFunction(
  { id: "later", triggers: [{ event: "ts/later" }], retries: 2 },
  async () => {
    stamp("later");
    if (state.times.later.length === 1) throw new RetryAfterError("busy", "2s");
    return "done";
  },
);

const laterStep = inngest.createFunction(
  { id: "later-step", triggers: [{ event: "ts/later-step" }], retries: 2 },
  async ({ step }) =>
    step.run("busy", () => {
      stamp("later-step");
      if (state.times["later-step"].length === 1) throw new RetryAfterError("busy", "2s");
      return "done";
    }),
);

const napper = inngest.createFunction(
  { id: "napper", triggers: [{ event: "ts/nap" }], retries: 0 },
  async ({ step }) => {
    const before = await step.run("before", () => Date.now());
    await step.sleep("nap", "2s");
    const after = await step.run("after", () => Date.now());
    return { slept: after - before };
  },
);

// waitForEvent with `match`, with `if`, and one that times out (null).
const waits = inngest.createFunction(
  { id: "waits", triggers: [{ event: "ts/order" }], retries: 0 },
  async ({ step }) => {
    const approval = await step.waitForEvent("approval", {
      event: "ts/approved",
      match: "data.order",
      timeout: "30s",
    });
    const review = await step.waitForEvent("review", {
      event: "ts/reviewed",
      if: "event.data.order == async.data.order && async.data.score > 5",
      timeout: "30s",
    });
    const missing = await step.waitForEvent("never", { event: "ts/never", timeout: "1s" });
    return { by: approval?.data.by ?? null, score: review?.data.score ?? null, missing };
  },
);

// Invoked functions: success, failure, and one too slow for its caller's timeout.
const double = inngest.createFunction(
  { id: "double", triggers: [], retries: 0 },
  async ({ event }) => {
    if (event.data.n < 0) throw new NonRetriableError("negative");
    return event.data.n * 2;
  },
);

const slow = inngest.createFunction(
  { id: "slow", triggers: [], retries: 0 },
  async ({ step }) => {
    await step.sleep("long", "1m");
    return "late";
  },
);

const invoker = inngest.createFunction(
  { id: "invoker", triggers: [{ event: "ts/invoke" }], retries: 0 },
  async ({ step }) => {
    const caught = async (promise) => {
      try {
        return { value: await promise };
      } catch (err) {
        return { name: err.name, message: err.message };
      }
    };
    const doubled = await step.invoke("double", { function: double, data: { n: 21 } });
    const failed = await caught(step.invoke("fails", { function: double, data: { n: -1 } }));
    const timedOut = await caught(step.invoke("slow", { function: slow, timeout: "1s" }));
    return { doubled, failed, timedOut };
  },
);

// Promise.all: both steps are in flight at once, or neither can finish.
async function branch(name) {
  count(name);
  state.inFlight += 1;
  state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
  try {
    const deadline = Date.now() + 10_000;
    while (state.maxInFlight < 2) {
      if (Date.now() > deadline) throw new Error(`${name}: the other branch never ran meanwhile`);
      await sleep(10);
    }
    return name.toUpperCase();
  } finally {
    state.inFlight -= 1;
  }
}

const fan = inngest.createFunction(
  { id: "fan", triggers: [{ event: "ts/fan" }], retries: 0 },
  async ({ step }) => {
    const both = await Promise.all([step.run("a", () => branch("a")), step.run("b", () => branch("b"))]);
    const after = await step.run("after", () => count("after") && "after");
    return [...both, after];
  },
);

// Events sent by a step and by the client inside a step; `notified` echoes what it got.
const sender = inngest.createFunction(
  { id: "sender", triggers: [{ event: "ts/send" }], retries: 0 },
  async ({ step }) => {
    const stepSent = await step.sendEvent("notify", { name: "ts/notified", data: { via: "step" } });
    const clientSent = await step.run("send-from-app", () =>
      inngest.send({ name: "ts/notified", data: { via: "client" } }),
    );
    return { step: stepSent.ids, client: clientSent.ids };
  },
);

const notified = inngest.createFunction(
  { id: "notified", triggers: [{ event: "ts/notified" }], retries: 0 },
  async ({ event }) => event.data,
);

// Cancelled by a `ts/cancel` event with the same data.id while it sleeps.
const cancellable = inngest.createFunction(
  {
    id: "cancellable",
    triggers: [{ event: "ts/cancellable" }],
    cancelOn: [{ event: "ts/cancel", match: "data.id" }],
    retries: 0,
  },
  async ({ event, step }) => {
    await step.run("started", () => count(`cancellable:${event.data.id}`));
    await step.sleep("wait", "1m");
    return "not cancelled";
  },
);

// A function that fails; its onFailure handler records the failure event.
const doomed = inngest.createFunction(
  {
    id: "doomed",
    triggers: [{ event: "ts/doomed" }],
    retries: 0,
    onFailure: async ({ event, error }) => {
      state.failures.push({ event, error: { name: error.name, message: error.message } });
      return "handled";
    },
  },
  async () => {
    throw new Error("intentional failure");
  },
);

// Nightly: only its registration is checked.
const nightly = inngest.createFunction(
  { id: "nightly", triggers: [{ cron: "TZ=Europe/Paris 0 3 * * *" }, { event: "ts/nightly" }] },
  async () => "synced",
);

const functions = [
  steps,
  flaky,
  broken,
  nope,
  nopeStep,
  later,
  laterStep,
  napper,
  waits,
  double,
  slow,
  invoker,
  fan,
  sender,
  notified,
  cancellable,
  doomed,
  nightly,
];

const app = express();
app.use(express.json({ limit: "10mb" }));
app.use("/api/inngest", serve({ client: inngest, functions }));
app.get("/state", (_req, res) => res.json(state));

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) throw new Error("PORT must be set to a port number");
app.listen(port, "127.0.0.1", (error) => {
  if (error) throw error; // e.g. EADDRINUSE: express 5 hands listen errors to this callback
  console.log(`ts-tests app on http://127.0.0.1:${port}`);
});
