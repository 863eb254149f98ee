// A fake of the vendor's base-station portal, served by the app itself under /vendor.
//
// 250 stations in four regions, paged; a few records are broken (no coordinates), and the
// portal rate-limits every third request (429 with Retry-After: 1), as the real one does
// when it is busy. VENDOR_RATE_LIMIT_EVERY=0 turns that off.
import { Router } from "express";

export type RawStation = {
  id: string;
  name: string;
  region: string;
  lat: number | null;
  lon: number | null;
};

const REGIONS = ["north", "south", "east", "west"];
const STATIONS: RawStation[] = Array.from({ length: 250 }, (_, i) => ({
  id: `bs-${String(i + 1).padStart(4, "0")}`,
  name: `Base station ${i + 1}`,
  region: REGIONS[i % REGIONS.length],
  lat: i % 25 === 7 ? null : 45 + (i % 50) / 10,
  lon: i % 25 === 7 ? null : 2 + (i % 30) / 10,
}));

export function portal(): Router {
  const every = Number(process.env.VENDOR_RATE_LIMIT_EVERY ?? "3");
  let requests = 0;
  const router = Router();
  router.get("/stations", (req, res) => {
    requests += 1;
    if (every > 0 && requests % every === 0) {
      res.set("Retry-After", "1").status(429).json({ error: "rate limited" });
      return;
    }
    const region = String(req.query.region ?? "all");
    const page = Number(req.query.page ?? "1");
    const perPage = Number(req.query.per_page ?? "100");
    const matching = STATIONS.filter((s) => region === "all" || s.region === region);
    const totalPages = Math.max(1, Math.ceil(matching.length / perPage));
    if (!Number.isInteger(page) || page < 1 || page > totalPages) {
      res.status(404).json({ error: `no page ${req.query.page}` });
      return;
    }
    const records = matching.slice((page - 1) * perPage, page * perPage);
    res.json({ page, total_pages: totalPages, records });
  });
  return router;
}
