"""docs/operations.md's journal backup, as written: an online copy of a running server's
journal, restored into a fresh directory, brings back "today" up to the moment of the copy."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import now, require_program
from tests.opsmetrics import OPERATIONS
from tests.serverproc import journal_config

SQLITE3 = "/usr/bin/sqlite3"


def backup_commands(data_dir: Path, backups: Path) -> str:
    """The documented backup block with the two directories replaced."""
    block = next(b for b in re.findall(r"```sh\n(.*?)```", OPERATIONS.read_text(), re.DOTALL)
                 if ".backup" in b)
    assert "/var/lib/wallboard/journal.sqlite3" in block and "/var/backups/wallboard" in block
    return block.replace("/var/lib/wallboard", str(data_dir)).replace(
        "/var/backups/wallboard", str(backups))


def calls(prefix: str, count: int, t0: float) -> list[dict[str, Any]]:
    """`count` contacts queued and answered 10 s later."""
    events = []
    for i in range(count):
        cid = f"{prefix}{i}"
        events.append({"type": "contact.queued", "id": f"{cid}q", "ts": t0 + i, "queue": "sales",
                       "channel": "voice", "contact_id": cid})
        events.append({"type": "contact.answered", "id": f"{cid}a", "ts": t0 + i + 10,
                       "queue": "sales", "channel": "voice", "contact_id": cid})
    return events


async def test_online_backup_restores_today_up_to_the_copy(server_process, tmp_path) -> None:
    require_program(SQLITE3, "Debian package sqlite3 takes the documented online backup")
    data, backups = tmp_path / "data", tmp_path / "backups"
    backups.mkdir()
    server = server_process(journal_config(data))
    await server.start()
    t0 = now() - 120
    async with aiohttp.ClientSession() as http:
        status, _, _ = await server.post(http, calls("before", 7, t0))
        assert status == 202
        # While the server runs and writes: the online copy.
        result = subprocess.run(["bash", "-euc", backup_commands(data, backups)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "ok"  # PRAGMA integrity_check
        status, _, _ = await server.post(http, calls("after", 3, t0 + 30))
        assert status == 202
        live = await server.snapshot(http)
        assert live["queues"]["sales"]["today"]["offered"] == 10
    server.stop()
    copies = list(backups.glob("journal-*.sqlite3"))
    assert len(copies) == 1
    # Restore as documented: the copy becomes journal.sqlite3 of an empty data directory.
    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    shutil.copy(copies[0], restored_dir / "journal.sqlite3")
    restored = server_process(journal_config(restored_dir))
    await restored.start()
    async with aiohttp.ClientSession() as http:
        snapshot = await restored.snapshot(http)
    sales = snapshot["queues"]["sales"]["today"]
    assert (sales["offered"], sales["answered"]) == (7, 7)  # what was stored at the copy
