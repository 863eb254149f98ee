// Our own stations table (in memory here; a database in real life).
import type { Station } from "./vendor.js";

export type Stored = Station & { synced_at: string };
export type Changes = { inserted: number; updated: number; unchanged: number };

const table = new Map<string, Stored>();

export function upsert(stations: Station[], syncedAt: string): Changes {
  const changes: Changes = { inserted: 0, updated: 0, unchanged: 0 };
  for (const station of stations) {
    const known = table.get(station.id);
    const same =
      known !== undefined &&
      (["name", "region", "lat", "lon"] as const).every((key) => known[key] === station[key]);
    changes[known === undefined ? "inserted" : same ? "unchanged" : "updated"] += 1;
    table.set(station.id, { ...station, synced_at: same ? known.synced_at : syncedAt });
  }
  return changes;
}

export function all(): Stored[] {
  return [...table.values()];
}
