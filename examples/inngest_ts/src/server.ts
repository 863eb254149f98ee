// Serves the functions at /api/inngest with Express, the fake portal at /vendor, and our
// stations at /stations, on 127.0.0.1:$PORT (default 3000).
import express from "express";
import { serve } from "inngest/express";

import { inngest, syncFunctions } from "./functions.js";
import { portal } from "./portal.js";
import * as stations from "./stations.js";

const port = Number(process.env.PORT ?? "3000");
const vendorUrl = process.env.VENDOR_URL ?? `http://127.0.0.1:${port}/vendor`;

const app = express();
app.use(express.json({ limit: "10mb" }));
app.use("/api/inngest", serve({ client: inngest, functions: syncFunctions(vendorUrl) }));
app.use("/vendor", portal());
app.get("/stations", (_req, res) => {
  res.json(stations.all());
});

app.listen(port, "127.0.0.1", (error?: Error) => {
  if (error) throw error; // e.g. EADDRINUSE: express 5 hands listen errors to this callback
  console.log(`base-stations-ts: http://127.0.0.1:${port}/api/inngest (portal: ${vendorUrl})`);
});
