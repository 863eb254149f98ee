// The sdk part's TypeScript SDK app: W1's function on the official npm `inngest` with Express.
//
//   INNGEST_DEV=<Stepline URL> PORT=<port> BENCH_EVENT=<event> node bench/sdk_ts_app.cjs
//
// It loads `inngest` and `express` from the Node project of Stepline's tests
// (tests/inngest/ts_app, installed there by `npm ci`; BENCH_TS_PROJECT names another), so the
// benchmark needs no packages of its own. The function is W1's body on the SDK: three
// `step.run` calls of a no-op returning { run, step, t } (t = when the step ran, epoch seconds
// with sub-millisecond precision, read by W2). GET /bench/stats reports the calls served at
// /api/inngest and the wall time spent in them (from the request's arrival to the response's
// end), so that the round trip seen by the engine splits into the app's time and the rest.
"use strict";

const path = require("node:path");
const { createRequire } = require("node:module");
const { performance } = require("node:perf_hooks");

const project =
  process.env.BENCH_TS_PROJECT ?? path.join(__dirname, "..", "tests", "inngest", "ts_app");
const load = createRequire(path.join(project, "package.json"));
const express = load("express");
const { Inngest } = load("inngest");
const { serve } = load("inngest/express");

const event = process.env.BENCH_EVENT;
const port = Number(process.env.PORT);
if (!event) throw new Error("BENCH_EVENT must name the event that triggers the function");
if (!Number.isInteger(port) || port <= 0) throw new Error("PORT must be set to a port number");

const now = () => (performance.timeOrigin + performance.now()) / 1000;
const noop = (run, step) => ({ run, step, t: now() });

const inngest = new Inngest({ id: "bench-ts" });
const threeSteps = inngest.createFunction(
  { id: "w1-three-steps", triggers: [{ event }], retries: 0 },
  async ({ event: received, step }) => {
    const run = Number(received.data.i);
    await step.run("s1", () => noop(run, 1));
    await step.run("s2", () => noop(run, 2));
    await step.run("s3", () => noop(run, 3));
  },
);

const stats = { calls: 0, seconds: 0 };
const app = express();
app.use("/api/inngest", (req, res, next) => {
  if (req.method !== "POST") return next();
  const start = process.hrtime.bigint();
  res.on("finish", () => {
    stats.calls += 1;
    stats.seconds += Number(process.hrtime.bigint() - start) / 1e9;
  });
  return next();
});
app.use(express.json({ limit: "10mb" }));
app.use("/api/inngest", serve({ client: inngest, functions: [threeSteps] }));
app.get("/bench/stats", (_req, res) => res.json(stats));
app.listen(port, "127.0.0.1", () => console.log(`READY http://127.0.0.1:${port}`));
process.on("SIGTERM", () => process.exit(0)); // stopped by PID: exit normally (flushes --cpu-prof)
