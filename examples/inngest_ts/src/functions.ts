// The base-station sync, written with the official Inngest TypeScript SDK.
//
// Nightly (cron, Paris time) or on demand (`stations/sync.requested`), it fetches every page of
// the vendor portal in its own step, upserts the valid stations, and announces the result with
// `inngest.send`. Steps are retried (4 times, or when the portal says), and
// `stations/sync.cancel` with the same `data.region` cancels a running sync.
import { Inngest } from "inngest";

import * as stations from "./stations.js";
import { fetchPage, valid } from "./vendor.js";

export const REQUESTED = "stations/sync.requested";
export const CANCEL = "stations/sync.cancel";
export const COMPLETED = "stations/sync.completed";

// Dev mode and the server's URL come from the environment (INNGEST_DEV=<Stepline's URL>).
export const inngest = new Inngest({ id: "base-stations-ts" });

type Totals = { fetched: number; invalid: number; inserted: number; updated: number; unchanged: number };

export function syncFunctions(vendorUrl: string) {
  const syncStations = inngest.createFunction(
    {
      id: "stations-sync",
      name: "Sync base stations (Inngest TS SDK)",
      triggers: [{ cron: "TZ=Europe/Paris 0 3 * * *" }, { event: REQUESTED }],
      retries: 4,
      cancelOn: [{ event: CANCEL, match: "data.region" }],
    },
    async ({ event, step }) => {
      const data = (event.data ?? {}) as { region?: string; per_page?: number };
      const region = data.region ?? "all";
      const perPage = data.per_page ?? 100;
      const syncedAt = await step.run("begin", () => new Date().toISOString());
      const totals: Totals = { fetched: 0, invalid: 0, inserted: 0, updated: 0, unchanged: 0 };
      for (let page = 1, pages = 1; page <= pages; page++) {
        const fetched = await step.run(`fetch-page-${page}`, () =>
          fetchPage(vendorUrl, region, page, perPage),
        );
        pages = fetched.total_pages;
        const good = fetched.records.filter(valid);
        const changes = await step.run(`upsert-page-${page}`, () =>
          stations.upsert(good, syncedAt),
        );
        totals.fetched += fetched.records.length;
        totals.invalid += fetched.records.length - good.length;
        totals.inserted += changes.inserted;
        totals.updated += changes.updated;
        totals.unchanged += changes.unchanged;
      }
      await step.run("announce", () =>
        inngest.send({ name: COMPLETED, data: { region, ...totals } }),
      );
      return { region, ...totals };
    },
  );

  const reportSync = inngest.createFunction(
    { id: "report-sync", name: "Report a finished sync", triggers: [{ event: COMPLETED }] },
    async ({ event }) => {
      const { region, inserted, updated, invalid } = event.data as Totals & { region: string };
      return `${region}: ${inserted} new, ${updated} changed, ${invalid} broken records skipped`;
    },
  );

  return [syncStations, reportSync];
}
