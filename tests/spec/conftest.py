"""Fixtures for the spec tests: the reference file, and a small valid spec to break on purpose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from fargo.spec import Problem, SpecInvalid, parse_spec

ROOT = Path(__file__).resolve().parents[2]

# Small, self-contained and valid; each bad-input test changes one thing in it.
SHOP = """\
name: shop
region: eu-west-1
network:
  cidr: 10.20.0.0/16
  availability_zones: 2
  subnets:
    public: [10.20.0.0/24, 10.20.1.0/24]
    private: [10.20.10.0/24, 10.20.11.0/24]
images:
  web: {dockerfile: web/Dockerfile}
  api: {dockerfile: api/Dockerfile}
cluster:
  name: shop
  container_insights: true
discovery:
  namespace: shop.local
  services:
    - name: api.internal
      ttl: 10
target_groups:
  web: {}
  api:
    health_check: {path: /health}
load_balancers:
  edge:
    scheme: internet-facing
    certificate: {domain: shop.example.com}
    listeners:
      - port: 443
        protocol: HTTPS
        ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06
        default_action: {forward: web}
        rules:
          - priority: 10
            conditions:
              - path_pattern: ["/api/*"]
            action: {forward: api}
      - port: 80
        protocol: HTTP
        default_action:
          redirect: {protocol: HTTPS, port: "443"}
services:
  web:
    image: web
    port: 8000
    target_groups: [web]
    environment:
      API_URL: "http://${lb:edge.dns_name}"
  api:
    image: api
    port: 9000
    cpu: 256
    memory: 512
    desired_count: 2
    target_groups: [api]
    discovery: api.internal
    autoscaling: {min_capacity: 1, max_capacity: 3}
logging:
  retention_days: 14
"""


@dataclass(frozen=True)
class SpecText:
    """Spec text under a file name, with helpers to break it and to read the result."""

    text: str
    name: str = "shop.yaml"

    def edit(self, old: str, new: str) -> SpecText:
        """Replace the one occurrence of ``old`` (so a stale edit fails loudly, not silently)."""
        assert self.text.count(old) == 1, f"{old!r} occurs {self.text.count(old)} times"
        return SpecText(self.text.replace(old, new), self.name)

    def at(self, needle: str) -> str:
        """``line:column`` (1-based) where ``needle`` first occurs: where an error should point."""
        index = self.text.index(needle)
        line = self.text.count("\n", 0, index) + 1
        column = index - (self.text.rfind("\n", 0, index) + 1) + 1
        return f"{line}:{column}"

    def problems(self) -> list[Problem]:
        with pytest.raises(SpecInvalid) as caught:
            parse_spec(self.text, self.name)
        assert caught.value.problems, "SpecInvalid without problems"
        return caught.value.problems

    def rendered(self) -> list[str]:
        return [problem.render(self.name) for problem in self.problems()]


@pytest.fixture
def shop() -> SpecText:
    return SpecText(SHOP)


@pytest.fixture
def spec_text() -> type[SpecText]:
    """``spec_text(TEXT, "name.yaml")``: the same helpers for another spec."""
    return SpecText


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
