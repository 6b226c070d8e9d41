"""The demo page as the architecture's dashboard, in real headless Chromium against the
reference twin: it loads without console errors, the diagram has a node per service, a
burst from the twin updates the tally and the latency statistics, the points show PASS,
the twin's own service map, latest trace and CPU chart are drawn, a failing route is
explained. And the service map, a trace's waterfall, the metrics and a scale-out drawn
from hand-written data in the twin's shapes (`tests.e2e.dashboard_sources`), for what a
short run seldom has."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e import dashboard_sources
from tests.e2e.chromium import INSTALL, Chromium, chromium_path
from tests.e2e.conftest import ROOT, Twin, fargo, free_ports, start_twin
from tests.local.console_twin import HandTwin, PointsRun

from fargo.local.console.server import Console

pytestmark = pytest.mark.slow

DISCOVERY = "private.backend.microservice.local"  # backend-private's Cloud Map name
# Where the screenshot goes, to look at (default: the test's temporary folder).
SCREENSHOT_ENV = "FARGO_DASHBOARD_SCREENSHOT"


@pytest.fixture(scope="module")
def reference_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """The reference system in its own VPC range (10.77.0.0/16), so it runs beside other
    twins of fargo.yaml on this machine (a developer's `make up`, other test runs)."""
    folder = tmp_path_factory.mktemp("dashboard")
    text = (ROOT / "fargo.yaml").read_text().replace("10.0.", "10.77.")
    text = text.replace("    dockerfile: ", f"    context: {ROOT / 'services'}\n    dockerfile: ")
    spec = folder / "fargo.yaml"
    spec.write_text(text)
    yield from start_twin(spec, folder / "state")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        message = f"the dashboard's browser test needs Chromium: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (make system-packages): missing is an error
        pytest.skip(message)
    return path


def listener_certificate(twin: Twin) -> bytes:
    return (twin.state_dir / "certs" / "certificate.pem").read_bytes()


def test_the_frontend_gets_the_consoles_url(reference_twin: Twin) -> None:
    console = reference_twin.endpoints.console
    assert console is not None and console.startswith("http://127.0.0.1:")
    page = reference_twin.url("public", "https")

    trust = ssl.create_default_context(cafile=reference_twin.ca)
    answer = httpx.get(page + "/console.json", verify=trust).json()
    headers = httpx.get(page + "/", verify=trust).headers

    assert answer == {"console": console}
    assert f"connect-src 'self' {console};" in headers["content-security-policy"]


async def test_the_dashboard_in_chromium(
    reference_twin: Twin, chromium: str, tmp_path: Path
) -> None:
    page_url = reference_twin.url("public", "https") + "/"
    services = [s.name for s in reference_twin.status().services]
    state = ["--state-dir", str(reference_twin.state_dir)]

    async with Chromium(trust=listener_certificate(reference_twin)) as page:
        await page.navigate(page_url)

        drawn = await page.wait_for(
            "Array.from(document.querySelectorAll('#diagram [data-service]'))"
            ".map((node) => node.dataset.service)"
        )
        assert sorted(drawn) == sorted(services)
        healthy_tasks = await page.evaluate(
            "document.querySelectorAll('#diagram [data-task].healthy').length"
        )
        assert healthy_tasks == sum(s.desired for s in reference_twin.status().services)
        rules = await page.evaluate(
            "document.querySelector('#diagram [data-load-balancer=\"public\"] title').textContent"
        )
        assert "rule 1: path-pattern /api/* → forward backend-public" in rules

        # The seven points, checked against the twin: every one passes but point 1, which
        # needs VPC mode (the reference twin runs in loopback mode) and says so.
        statuses = await page.wait_for(
            "document.querySelectorAll('#points li[data-point]').length === 7 && "
            "Object.fromEntries(Array.from(document.querySelectorAll('#points li'))"
            ".map((li) => [li.dataset.point, li.className]))",
            timeout=60,
        )
        assert statuses == {"1": "skipped", **{str(n): "pass" for n in range(2, 8)}}
        assert await page.evaluate(
            "Array.from(document.querySelectorAll('#points li .badge'))"
            ".slice(1).every((badge) => badge.textContent === 'PASS')"
        )

        # A burst from the twin updates the tally and the statistics.
        await page.evaluate("document.querySelector('button[data-burst=\"/api/private\"]').click()")
        row = await page.wait_for(
            "(() => { const row = document.querySelector('#stats tr[data-route=\"/api/private\"]');"
            " return row && Array.from(row.cells).map((cell) => cell.textContent); })()"
        )
        route, measured_from, calls, ok, low, p50, p95, high = row
        assert (route, measured_from, calls, ok) == ("/api/private", "the twin (burst)", "50", "50")
        latencies = [float(v.removesuffix(" ms")) for v in (low, p50, p95, high)]
        assert latencies == sorted(latencies) and latencies[0] > 0
        tally = await page.evaluate(
            "Array.from(document.querySelectorAll('#tally tbody tr'))"
            ".map((tr) => Array.from(tr.cells).map((cell) => cell.textContent))"
        )
        private = reference_twin.service("backend-private")
        assert sorted(r[0] for r in tally) == sorted(t.id for t in private.tasks)
        assert sum(int(r[1]) for r in tally) == 50

        # The browser's own series: 20 calls through the internal load balancer.
        await page.evaluate(
            'document.querySelector(\'button[data-route="/api/private-with-alb"]'
            '[data-times="20"]\').click()'
        )
        own = await page.wait_for(
            "(() => { const row = document.querySelector("
            "'#stats tr[data-route=\"/api/private-with-alb\"]');"
            " return row && Array.from(row.cells).map((cell) => cell.textContent); })()"
        )
        assert own[1:4] == ["this browser", "20", "20"]

        # The twin's own service map, from the traces the calls above left: the burst
        # through Cloud Map, the browser's calls through both load balancers (the page
        # asks every 5 s).
        mapped = await page.wait_for(
            "(() => { const names = Array.from(document.querySelectorAll("
            "'#service-map [data-map-node]')).map((node) => node.dataset.mapNode);"
            " return ['public', 'internal', 'backend-public', 'backend-private-with-alb']"
            ".every((name) => names.includes(name)) && names; })()"
        )
        assert {"client", DISCOVERY, "backend-private"} <= set(mapped), mapped
        calls = await page.evaluate(
            "Array.from(document.querySelectorAll('#service-map tr'))"
            ".map((tr) => tr.cells[0].textContent)"
        )
        assert {
            "client → public",
            "public → backend-public",
            "backend-public → internal",
            "internal → backend-private-with-alb",
            f"backend-public → {DISCOVERY}",
            f"{DISCOVERY} → backend-private",
        } <= set(calls), calls

        # The latest trace, chosen in the list, as a waterfall of the twin's spans of it.
        chosen = await page.wait_for(
            "(() => { const chart = document.querySelector('#waterfall svg');"
            " const row = document.querySelector('#traces tr.chosen');"
            " return chart && row"
            " && chart.getAttribute('aria-label') === `trace ${row.dataset.trace}`"
            " && { trace: row.dataset.trace,"
            " spans: Array.from(chart.querySelectorAll('[data-span]'))"
            ".map((span) => span.dataset.span) }; })()"
        )
        kept = json.loads(fargo("traces", chosen["trace"], "--json", *state).stdout)
        assert len(chosen["spans"]) >= 1
        assert set(chosen["spans"]) <= {span["id"] for span in kept["spans"]}

        # The twin's metrics: CPU utilization with a line per service, once two datapoints
        # (6 s apart) have passed (a TimeoutError if never).
        cpu_chart = '#metrics svg.chart[data-metric="AWS/ECS CPUUtilization Average"]'
        await page.wait_for(
            f"document.querySelectorAll('{cpu_chart} path.line').length === {len(services)}",
            timeout=60,
        )

        # No scaling in a few quiet seconds, and the page says so.
        scaling = await page.wait_for("document.querySelector('#scaling').textContent")
        assert scaling == "No scaling activity yet."

        shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "dashboard.png")
        await page.screenshot(shot)
        print(f"dashboard screenshot: {shot}")
        assert page.errors == []

        # A route whose callee has no task left is explained, not shown as a proxy's page.
        fargo("scale", "backend-private", "0", *state)
        try:
            await page.evaluate(
                'document.querySelector(\'button[data-route="/api/private"]'
                '[data-times="1"]\').click()'
            )
            said = await page.wait_for(
                "(() => { const row = document.querySelector("
                "'#routes tr[data-route=\"/api/private\"]');"
                " return row.querySelector('.status').classList.contains('error') &&"
                " row.querySelector('.body').textContent; })()"
            )
            assert said.startswith("backend-private has 0 healthy tasks (0 desired"), said
            assert "see `fargo status`" in said and "<" not in said
            await page.wait_for(
                "document.querySelector('#diagram [data-service=\"backend-private\"]')"
                ".textContent.includes('0/0')"
            )
            # The change is in the page's events, as `fargo events` has it.
            await page.wait_for(
                "document.querySelector('#events').textContent"
                ".includes('(service backend-private) desired count changed from 2 to 0')"
            )
        finally:
            fargo("scale", "backend-private", "2", *state)


@contextlib.contextmanager
def frontend(port: int, console: str | None) -> Iterator[str]:
    """The real frontend service (its page and assets) on 127.0.0.1:``port``, given the
    console's URL as the twin gives it (None: as on AWS); the page's URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "services"), "HOST": "127.0.0.1"}
    env["PORT"] = str(port)
    env.pop("FARGO_CONSOLE_URL", None)
    if console is not None:
        env["FARGO_CONSOLE_URL"] = console
    process = subprocess.Popen(
        [sys.executable, "-m", "frontend"],
        cwd=ROOT / "services",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    page = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(page + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
            time.sleep(0.1)
        yield page + "/"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
async def page_with_sources(tmp_path: Path) -> AsyncIterator[str]:
    """The frontend beside a console serving metrics, traces and the service map in the
    control plane's shapes: the page's URL."""
    port = free_ports(1)[0]
    (tmp_path / "events.jsonl").write_text(json.dumps(dashboard_sources.SCALING_EVENT) + "\n")
    console = Console(HandTwin(tmp_path, page=f"http://127.0.0.1:{port}"), run_points=PointsRun())
    console.sources.update(dashboard_sources.SOURCES)
    await console.start()
    assert console.url is not None
    try:
        with frontend(port, console.url) as page:
            yield page
    finally:
        await console.stop()


async def test_without_a_console_the_page_is_its_request_part(chromium: str) -> None:
    with frontend(free_ports(1)[0], None) as url:
        async with Chromium() as page:
            await page.navigate(url)

            said = await page.wait_for(
                "!document.querySelector('#console-state').textContent.startsWith('Looking')"
                " && document.querySelector('#console-state').textContent"
            )
            assert "dashboard" in said and "the twin's" in said
            assert await page.evaluate("document.querySelector('#dashboard').hidden")
            assert await page.evaluate(
                "Array.from(document.querySelectorAll('.twin-only')).every((node) => node.hidden)"
            )
            await page.evaluate(
                "document.querySelector('button[data-route=\"/api/public\"]').click()"
            )
            # No API behind this frontend: the answer is shown as it is, no console asked.
            status = await page.wait_for("document.querySelector('#routes .status').textContent")
            assert status.startswith("404")
            assert [e for e in page.errors if "404" not in e] == []


async def test_the_service_map_a_trace_and_metrics_are_drawn(
    page_with_sources: str, chromium: str, tmp_path: Path
) -> None:
    async with Chromium() as page:
        await page.navigate(page_with_sources)

        nodes = await page.wait_for(
            "Array.from(document.querySelectorAll('#service-map [data-map-node]'))"
            ".map((node) => node.dataset.mapNode)"
        )
        assert sorted(nodes) == sorted(n["name"] for n in dashboard_sources.SERVICE_MAP["nodes"])
        edges = await page.evaluate("document.querySelectorAll('#service-map line.edge').length")
        assert edges == len(dashboard_sources.SERVICE_MAP["edges"])
        assert await page.evaluate("document.querySelectorAll('#service-map line.bad').length") == 1

        spans = await page.wait_for(
            "Array.from(document.querySelectorAll('#waterfall [data-span]'))"
            ".map((span) => span.dataset.span)"
        )
        assert spans == [s["id"] for s in dashboard_sources.SPANS]
        chosen = await page.evaluate(
            "document.querySelector('#traces tr.chosen, #traces tr[data-trace]').dataset.trace"
        )
        assert chosen == dashboard_sources.TRACE_ID

        charts = await page.wait_for(
            "Array.from(document.querySelectorAll('#metrics svg.chart'))"
            ".map((chart) => chart.dataset.metric)"
        )
        assert charts == [
            "AWS/ECS CPUUtilization Average",
            "AWS/ApplicationELB RequestCount Sum",
            "AWS/ApplicationELB TargetResponseTime p95",
        ]
        lines = await page.evaluate(
            "document.querySelectorAll('#metrics svg.chart[data-metric*=CPU] path.line').length"
        )
        assert lines == 2  # one per service

        scaling = await page.wait_for(
            "Array.from(document.querySelectorAll('#scaling li.scaling'))"
            ".map((li) => li.textContent)"
        )
        assert scaling == [
            "07:00:05 backend-private-with-alb: Application Auto Scaling: CPUUtilization 86 % "
            "> 70 % target for 3 datapoints: 2 → 3 tasks"
        ]

        shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "dashboard.png")
        await page.screenshot(shot.with_name(shot.stem + "-sources.png"))
        assert page.errors == []
