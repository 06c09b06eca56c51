"""Make the README's screenshot of the dashboard: ``python -m tests.stories.dashboard.screenshot OUT.png``.

Runs ``gitops demo``, opens the page it points at in headless Chromium (the browser tests'
driver) and captures it mid-story, once a wave has completed while a later one rolls, so the
picture shows most states at once. Not a test: tests keep their screenshots in their temporary
folders; this one is committed as docs/dashboard.png.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.stories.dashboard.browser import Chromium

ROOT = Path(__file__).resolve().parents[3]
WANTED = """(() => {
  const waves = Array.from(document.querySelectorAll('#waves .badge')).map(b => b.textContent);
  return waves.includes('complete') && waves.includes('rolling')
    && document.querySelectorAll('#timeline g.wave').length > 0;
})()"""


def main(out: Path) -> int:
    demo = subprocess.Popen(
        [sys.executable, "-m", "gitops.cli", "demo", "--time-scale", "0.01"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    browser = None
    try:
        url = ""
        for line in demo.stdout:
            match = re.search(r"open (http://127\.0\.0\.1:\d+/) to watch", line)
            if match:
                url = match.group(1)
                break
        if not url:
            print("gitops demo never printed the dashboard's address", file=sys.stderr)
            return 1
        browser = Chromium(Path(tempfile.mkdtemp(prefix="gitops-shot-")), 1280, 1000)
        browser.open(url)
        browser.until(WANTED, 240, "a completed wave while another rolls")
        time.sleep(0.5)  # let the timeline's fetch land before the picture
        browser.screenshot(out)
        print(f"wrote {out}")
        return 0
    finally:
        if browser is not None:
            browser.close()
        demo.send_signal(signal.SIGINT)  # the demo stops what it started
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png"))
