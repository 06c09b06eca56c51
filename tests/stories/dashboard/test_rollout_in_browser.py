"""The dashboard of a real ``gitops run`` process, watched in headless Chromium during rollouts.

The controller runs as a child process against the simulator (over HTTP) and a fleet remote;
the browser loads the page from the controller's own HTTP address and every check reads the
rendered DOM. The story: every cluster and pool appears with its image; an engineer's image
bump rolls through the waves and the page's numbers follow it to convergence (kept as a
screenshot under the test's temporary folder); then a bad image whose nodes never boot spends
the failure budget, and the halted pool shows the reason; a node hand-patched to report markup
as its OS image is listed as drift, as text.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from gitops.dashboard.svg import _BOTTOM, _TOP, HEIGHT
from gitops.fleet import load
from tests.adapters.controller.conftest import Launch, World, commit, set_image
from tests.conftest import git
from tests.stories.dashboard.browser import CELLS, Chromium

EVIL = 'OS (v2)<script>document.body.dataset.pwned="1"</script>'
BOTTOM, TOP = float(HEIGHT - _BOTTOM), float(_TOP)  # the timeline's 0 % and 100 % lines


def pools_of(world: World) -> dict[tuple[str, str], int]:
    fleet = load(world.work)
    return {(c.name, p.name): p.replicas for c in fleet.clusters for p in c.spec.node_pools}


def settled(cells: list[dict[str, Any]], pools: dict[tuple[str, str], int], image: str) -> bool:
    """Every pool shown, on ``image``, converged with all its replicas on target."""
    shown = {(c["cluster"], c["pool"]): c for c in cells}
    return set(shown) == set(pools) and all(
        c["image"] == image and c["state"] == "converged" and c["count"] == f"{pools[k]}/{pools[k]}"
        for k, c in shown.items()
    )


def watch(
    browser: Chromium, pools: dict[tuple[str, str], int], image: str, revision: str
) -> dict[tuple[str, str], list[int]]:
    """Read the matrix until it shows ``revision`` converged on ``image``; what each pool's
    count read on the way (only cells already showing ``image``)."""
    counts: dict[tuple[str, str], list[int]] = {k: [] for k in pools}
    deadline = time.monotonic() + 120
    while True:
        cells = browser.evaluate(CELLS)
        shown_revision = browser.evaluate("document.querySelector('#revision').textContent")
        for c in cells:
            if c["image"] == image and shown_revision == revision[:12]:
                on = int(c["count"].split("/")[0])
                seen = counts[(c["cluster"], c["pool"])]
                if not seen or seen[-1] != on:
                    seen.append(on)
        if shown_revision == revision[:12] and settled(cells, pools, image):
            return counts
        assert time.monotonic() < deadline, f"the page never showed {image} converged: {cells}"
        time.sleep(0.2)  # the controller and the page move in other processes


@pytest.mark.slow
def test_the_page_follows_a_rollout_to_convergence_and_shows_a_halt(
    world: World, gitops_run: Launch, browser: Chromium, tmp_path: Path
) -> None:
    pools = pools_of(world)
    run = gitops_run("a")
    browser.open(run.address + "/")

    # Every cluster and pool, with its image, in wave order.
    browser.until(f"({CELLS}).length === {len(pools)}", 60, "every pool on the page")
    first = watch(browser, pools, "os-1", git(world.work, "rev-parse", "HEAD"))
    assert set(first) == set(pools)
    rows = browser.evaluate(
        "Array.from(document.querySelectorAll('#matrix tbody tr')).map(r => r.textContent)"
    )
    assert [r.split(":")[0] for r in rows if r.startswith("wave ")] == [
        "wave 1",
        "wave 2",
        "wave 3",
    ]

    # The bump rolls through; each pool's count only grows, and ends at its replicas.
    set_image(world.work, "os-1", "os-2")
    bumped = commit(world.work, "Roll the fleet to os-2")
    counts = watch(browser, pools, "os-2", bumped)
    for key, seen in counts.items():
        assert seen and seen == sorted(seen), (key, seen)
        assert seen[-1] == pools[key], key
    waves = browser.evaluate(
        "Array.from(document.querySelectorAll('#waves li.wave .badge')).map(b => b.textContent)"
    )
    assert waves == ["complete", "complete", "complete"]
    # The timeline drew each wave from 0 % (the first pass on the new revision) to 100 %.
    browser.until(
        "Array.from(document.querySelectorAll('#timeline g.wave text')).map(t => t.textContent)"
        ".filter(t => /^(\\S+) (\\d+)\\/\\2$/.test(t)).length === 3",
        30,
        "every wave's line at its full count",
    )
    lines = browser.evaluate(
        "Array.from(document.querySelectorAll('#timeline g.wave')).map(g => "
        "[g.dataset.wave, g.querySelector('polyline').getAttribute('points')])"
    )
    assert [name for name, _ in lines] == ["canary", "staging", "prod"]
    for name, points in lines:
        ys = [float(p.split(",")[1]) for p in points.split()]
        assert (ys[0], ys[-1]) == (BOTTOM, TOP), name
    shot = browser.screenshot(tmp_path / "dashboard-converged.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A bad image: its nodes never boot, the budget is spent, the halted pool says why.
    world.sim.world.physics.boot_failure_rate = 1.0  # type: ignore[union-attr]
    set_image(world.work, "os-2", "os-3")
    commit(world.work, "Roll the fleet to os-3")
    browser.until("!document.querySelector('#halt').hidden", 120, "the halt box")
    reason = browser.evaluate("document.querySelector('#halt-reason').textContent")
    assert "maxFailedNodes" in reason
    halted = [c for c in browser.evaluate(CELLS) if c["state"] == "halted"]
    assert halted and all(c["label"] == "halted" and reason in c["detail"] for c in halted)
    assert ("canary", "workers") in {(c["cluster"], c["pool"]) for c in halted}

    # A host patched by hand to report markup: drift, shown as text; nothing runs.
    node = _patch_os_image(world, "prod-b", EVIL)
    browser.until(
        f"document.querySelector('#drift').textContent.includes({json.dumps('observed ' + EVIL)})",
        60,
        "the hand-patched node's drift",
    )
    assert node in browser.evaluate("document.querySelector('#drift').textContent")
    assert browser.evaluate("document.querySelectorAll('script').length") == 1
    assert browser.evaluate("document.body.dataset.pwned === undefined")

    # Nothing secret on the page or in its data: not the kubeconfig's token.
    with urllib.request.urlopen(run.address + "/api/v1/fleet", timeout=5) as response:
        data = response.read().decode()
    page = browser.evaluate("document.documentElement.outerHTML")
    secret = _token(Path(world.sim.kubeconfig_path))
    assert secret and secret not in data and secret not in page


def _token(kubeconfig: Path) -> str:
    doc = yaml.safe_load(kubeconfig.read_text())
    return str(doc["users"][0]["user"].get("token", ""))


def _patch_os_image(world: World, cluster: str, os_image: str) -> str:
    """Report ``os_image`` on the first node of ``cluster`` (the kubelet would); its name."""
    client = kubernetes.config.new_client_from_config(world.sim.workload_kubeconfig(cluster))
    core = kubernetes.client.CoreV1Api(client)
    name: str = sorted(n.metadata.name for n in core.list_node().items)[0]
    core.patch_node_status(name, {"status": {"nodeInfo": {"osImage": os_image}}})
    return name
