// The portal client: one page of stations, with the portal's errors as the SDK's.
import { NonRetriableError, RetryAfterError } from "inngest";

import type { RawStation } from "./portal.js";

export type Page = { page: number; total_pages: number; records: RawStation[] };
export type Station = { id: string; name: string; region: string; lat: number; lon: number };

export async function fetchPage(
  baseUrl: string,
  region: string,
  page: number,
  perPage: number,
): Promise<Page> {
  const query = new URLSearchParams({ region, page: String(page), per_page: String(perPage) });
  const response = await fetch(`${baseUrl}/stations?${query}`);
  if (response.status === 429) {
    // Inngest (here: Stepline) retries the step no sooner than the portal asks.
    const after = Number(response.headers.get("retry-after") ?? "5");
    throw new RetryAfterError("the portal is rate limiting us", after * 1000);
  }
  if (response.status === 404) {
    throw new NonRetriableError(`the portal has no page ${page}`); // retrying cannot help
  }
  if (!response.ok) throw new Error(`the portal answered ${response.status}`); // retried
  return (await response.json()) as Page;
}

export function valid(record: RawStation): record is Station {
  return typeof record.lat === "number" && typeof record.lon === "number";
}
