"""docs/operations.md as written: its nginx site proxies boards over wss:// to a real server,
and its systemd unit passes systemd-analyze."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from websockets import InvalidStatus
from websockets.asyncio.client import connect
from websockets.typing import Origin

from tests.conftest import TOKEN, base_config, free_port, now, require_program
from tests.opsmetrics import OPERATIONS
from tests.wsclient import BoardClient

NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"


def doc_block(language: str) -> str:
    """The one ```LANGUAGE block of docs/operations.md."""
    blocks = re.findall(rf"```{language}\n(.*?)```", OPERATIONS.read_text(), re.DOTALL)
    assert len(blocks) == 1, f"expected one {language} block, found {len(blocks)}"
    return blocks[0]


def self_signed(where: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl."""
    require_program(OPENSSL, "Debian package openssl makes the test certificate")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    return cert, key


def site_config(app_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """The documented site with only addresses, ports and certificate paths changed."""
    site = doc_block("nginx")
    replacements = {
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{app_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/letsencrypt/live/wallboard.example.com/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/wallboard.example.com/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        assert old in site, f"docs/operations.md nginx block no longer has {old!r}"
        site = site.replace(old, new)
    return site


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[object]:
    """Factory: run nginx in the foreground, one process, everything under tmp_path."""
    require_program(NGINX, "Debian package nginx runs the documented reverse proxy")
    procs: list[subprocess.Popen[bytes]] = []

    def start(site: str) -> Path:
        temp = tmp_path / "nginx"
        temp.mkdir()
        conf = temp / "nginx.conf"
        paths = "\n".join(f"    {kind}_temp_path {temp / kind};"
                          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf.write_text(
            f"daemon off;\nmaster_process off;\npid {temp / 'nginx.pid'};\n"
            f"error_log {temp / 'error.log'} info;\nevents {{}}\n"
            f"http {{\n    access_log off;\n{paths}\n{site}\n}}\n")
        check = subprocess.run([NGINX, "-t", "-p", str(temp), "-c", str(conf)],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        procs.append(subprocess.Popen([NGINX, "-p", str(temp), "-c", str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return temp / "error.log"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


async def wait_listening(url: str, context: ssl.SSLContext, log: Path) -> None:
    """Poll until the proxy answers."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url, ssl=context) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"nginx did not answer: {log.read_text()[-2000:]}")


async def test_boards_work_through_the_documented_nginx_site(live_server, nginx,
                                                             tmp_path) -> None:
    live = await live_server(base_config())
    cert, key = self_signed(tmp_path)
    http_port, https_port = free_port(), free_port()
    log = nginx(site_config(live.server.port, http_port, https_port, cert, key))
    context = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{https_port}"
    await wait_listening(f"{base}/healthz", context, log)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{http_port}/board/overview",
                            allow_redirects=False) as resp:
            assert resp.status == 301
            assert resp.headers["Location"].startswith("https://")
        async with http.get(f"{base}/board/overview", ssl=context) as resp:
            assert resp.status == 200
            assert "strict-transport-security" in {k.lower() for k in resp.headers}
        async with http.get(f"{base}/metrics", ssl=context) as resp:
            assert resp.status == 403  # only the private network may read /metrics
        board = BoardClient(f"wss://127.0.0.1:{https_port}/ws?board=overview")
        board.conn = await connect(board.url, ssl=context, max_size=None)
        try:
            assert (await board.receive())["type"] == "snapshot"
            # A change pushed by the server comes through the proxy at once (no buffering).
            async with http.post(f"{base}/api/events", ssl=context, json={
                    "type": "contact.queued", "id": "p1", "ts": now(), "queue": "sales",
                    "channel": "voice", "contact_id": "c1"},
                    headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                assert resp.status == 202, await resp.text()
            await board.wait_for(lambda s: s.get("queues.sales.live.waiting") == 1, timeout=5)
        finally:
            await board.conn.close()
        # A browser's handshake carries the page's origin, port included: the proxy passes the
        # Host it was sent, so the server recognises its own pages and refuses other sites'.
        async with connect(board.url, ssl=context, origin=Origin(base)) as ws:
            assert '"type":"snapshot"' in await ws.recv()
        with pytest.raises(InvalidStatus) as refused:
            await connect(board.url, ssl=context, origin=Origin("https://evil.example"))
        assert refused.value.response.status_code == 403


def test_the_documented_systemd_unit_verifies(tmp_path: Path) -> None:
    require_program(SYSTEMD_ANALYZE, "Debian package systemd checks the documented unit")
    wallboard = shutil.which("wallboard") or str(Path(sys.executable).parent / "wallboard")
    unit = doc_block("ini").replace("/opt/wallboard/bin/wallboard", wallboard)
    assert "ExecStart=" in unit and "User=wallboard" in unit
    # The unit's user need not exist on the test machine.
    unit = unit.replace("User=wallboard", "User=root").replace("Group=wallboard", "Group=root")
    path = tmp_path / "wallboard.service"
    path.write_text(unit)
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True,
                            text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "wallboard.service" in line]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


def test_systemd_analyze_would_catch_a_broken_unit(tmp_path: Path) -> None:
    require_program(SYSTEMD_ANALYZE, "Debian package systemd checks the documented unit")
    path = tmp_path / "wallboard.service"
    unit = doc_block("ini").replace("RestartSec=", "RestartSecs=")
    path.write_text(unit.replace("User=wallboard", "User=root")
                    .replace("Group=wallboard", "Group=root"))
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert "Unknown key 'RestartSecs'" in result.stdout + result.stderr
