"""Read `/metrics` as Prometheus does: with prometheus-client's parser, by name and labels."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape's samples: `scrape.value("stepline_queue_depth", function="fn")`."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self._samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families.values()
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        """The sample's value; None when the scrape has no such sample."""
        return self._samples.get((name, frozenset(labels.items())))

    def labelled(self, name: str) -> Mapping[frozenset[tuple[str, str]], float]:
        """Every sample named `name`, by its labels."""
        return {labels: v for (n, labels), v in self._samples.items() if n == name}


def scrape(http: httpx.Client, path: str = "/metrics", **headers: str) -> Scrape:
    """GET the metrics (200 expected, in Prometheus's text format) and parse them."""
    response = http.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)
