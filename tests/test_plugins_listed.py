"""`wallboard plugins` lists every bundled connector, the second wave's included."""

from __future__ import annotations

import subprocess
import sys


def test_wallboard_plugins_lists_the_second_wave_of_connectors() -> None:
    done = subprocess.run([sys.executable, "-m", "wallboard", "plugins"], capture_output=True,
                          text=True, timeout=60, check=True)
    listed = {line.split(" ", 1)[0]: line for line in done.stdout.splitlines() if line}
    for name in ("asterisk_queue_log", "genesys_cloud", "amazon_connect"):
        assert name in listed, done.stdout
        assert f"source types: {name}" in listed[name], listed[name]
