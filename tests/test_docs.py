"""docs/plugins.md documents every hook with its exact signature, and its code runs."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import aiohttp
import pluggy
import pytest
from aiohttp.test_utils import TestServer
from wallboard_plugins import webhook

from tests.conftest import base_config
from wallboard.config.settings import parse_settings
from wallboard.kit import hookspecs
from wallboard.kit.source import UP
from wallboard.kit.testing import SourceContract, SourceHarness
from wallboard.server import keys
from wallboard.server.app import create_app
from wallboard.server.plugins import build_registry

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```python\n(.*?)```", re.DOTALL)


def hook_signatures(*namespaces: object) -> set[str]:
    """'name(arg, ...)' of every hook spec in the given modules or classes."""
    found = set()
    for namespace in namespaces:
        for name, function in inspect.getmembers(namespace, inspect.isfunction):
            if hasattr(function, "wallboard_spec"):
                params = [p for p in inspect.signature(function).parameters if p != "self"]
                found.add(f"{name}({', '.join(params)})")
    return found


def documented_hooks(markdown: str) -> set[str]:
    """The headings of the hook reference section, backticks removed."""
    section = markdown.split("\n## Hook reference\n", 1)[1].split("\n## ", 1)[0]
    return {h.strip().strip("`") for h in re.findall(r"^### (.+)$", section, re.MULTILINE)}


def doc_problems(markdown: str, *namespaces: object) -> list[str]:
    """Hooks without a section, and sections without a hook (both directions)."""
    specs, documented = hook_signatures(*namespaces), documented_hooks(markdown)
    return ([f"hook {sig} has no '### {sig}' section in docs/plugins.md"
             for sig in sorted(specs - documented)]
            + [f"docs/plugins.md documents {sig}, which is no hook spec"
               for sig in sorted(documented - specs)])


def test_every_hook_spec_has_a_reference_section_with_its_exact_signature() -> None:
    assert hook_signatures(hookspecs) == {"register_source_types()", "register_routes()"}
    assert doc_problems(DOCS.read_text(), hookspecs) == []


def test_checker_fails_for_a_hook_added_without_documentation() -> None:
    hookspec = pluggy.HookspecMarker("wallboard")

    class ThrowawaySpecs:
        @hookspec
        def prepare_board(self, board: dict, settings: object) -> None:
            """A hook nobody documented."""

    text = DOCS.read_text()
    assert doc_problems(text, hookspecs, ThrowawaySpecs) == [
        "hook prepare_board(board, settings) has no '### prepare_board(board, settings)' "
        "section in docs/plugins.md"]
    documented = text.replace("## Source kit reference",
                              "### prepare_board(board, settings)\n\n## Source kit reference")
    assert doc_problems(documented, hookspecs, ThrowawaySpecs) == []


def test_checker_fails_for_a_documented_hook_that_does_not_exist() -> None:
    text = DOCS.read_text().replace("### register_routes()", "### register_routes(app)")
    assert doc_problems(text, hookspecs) == [
        "hook register_routes() has no '### register_routes()' section in docs/plugins.md",
        "docs/plugins.md documents register_routes(app), which is no hook spec"]


def test_every_contract_check_is_described() -> None:
    text = DOCS.read_text()
    checks = [name for name in dir(SourceContract) if name.startswith("test_")]
    assert len(checks) == 7
    assert [name for name in checks if f"`{name}`" not in text] == []


@pytest.fixture(scope="module")
def doc_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every code block marked `<!-- file: NAME -->`, written out (same names concatenated)."""
    where = tmp_path_factory.mktemp("docs")
    files: dict[str, str] = {}
    for name, code in FILE_BLOCK.findall(DOCS.read_text()):
        files[name] = files.get(name, "") + code + "\n"
    for name, code in files.items():
        (where / name).write_text(code)
    return where


def load(doc_files: Path, module: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import one of the docs' files."""
    monkeypatch.syspath_prepend(str(doc_files))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return __import__(module)


def test_tutorial_sources_pass_the_contract_suite(doc_files: Path) -> None:
    assert sorted(p.name for p in doc_files.iterdir()) == [
        "acme_helpdesk.py", "acme_pbx.py", "example_ingest_route.py", "example_register_routes.py",
        "example_register_source_types.py", "test_acme.py"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
                             "test_acme.py"], cwd=doc_files, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(doc_files)})
    assert result.returncode == 0, result.stdout[-4000:]
    for contract in ("TestAcmeHelpdeskContract", "TestAcmePbxContract"):
        assert result.stdout.count(f"{contract}::") == 7
        assert f"{contract}::test_survives_malformed_payloads_from_its_peer PASSED" \
            in result.stdout


async def test_register_source_types_example_registers_a_source_that_comes_up(
        doc_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = load(doc_files, "example_register_source_types", monkeypatch)
    pm = pluggy.PluginManager("wallboard")
    pm.add_hookspecs(hookspecs)
    pm.register(example, name="heartbeat")
    source_class = build_registry(pm).types["heartbeat"]
    source = source_class("hb", source_class.Config(type="heartbeat"))
    async with SourceHarness(source) as harness:
        await harness.wait_for(lambda: harness.status == UP, "come up")


async def test_register_routes_example_serves_its_route(doc_files: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    example = load(doc_files, "example_register_routes", monkeypatch)
    pm = pluggy.PluginManager("wallboard")
    pm.add_hookspecs(hookspecs)
    pm.register(webhook, name="webhook")
    pm.register(example, name="acme")
    server = TestServer(create_app(parse_settings(base_config(journal={"enabled": False})),
                                   plugin_manager=pm),
                        host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{server.port}/acme/status") as resp:
            assert resp.status == 200 and await resp.json() == {"hook": 0}
    finally:
        await server.close()


async def test_ingest_route_example_stores_once_and_answers_each_case(
        doc_files: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    example = load(doc_files, "example_ingest_route", monkeypatch)
    pm = pluggy.PluginManager("wallboard")
    pm.add_hookspecs(hookspecs)
    pm.register(webhook, name="webhook")
    pm.register(example, name="acme")
    config = base_config(journal={"data_dir": str(tmp_path / "journal")})
    config["sources"]["dialer"] = {"type": "acme_hook"}
    app = create_app(parse_settings(config), plugin_manager=pm)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    event = {"type": "contact.queued", "id": "e1", "queue": "sales", "contact_id": "c1",
             "ts": time.time()}
    url = f"http://127.0.0.1:{server.port}/acme"
    try:
        async with aiohttp.ClientSession() as http:
            answers = []
            for path, body in [("dialer", event), ("dialer", event),
                               ("dialer", {**event, "id": "e2", "queue": ""}),
                               ("hook", event), ("dialer", b"{")]:
                data = body if isinstance(body, bytes) else json.dumps(body)
                async with http.post(f"{url}/{path}", data=data) as resp:
                    answers.append((resp.status, await resp.json()))
    finally:
        await server.close()
    ack = {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0}
    assert answers[0] == (202, ack)
    assert answers[1] == (202, {**ack, "accepted": 0, "duplicates": 1})
    assert answers[2][0] == 400 and answers[2][1]["error"].startswith("queue: ")
    assert answers[3] == (404, {"error": "no acme_hook source of that name"})  # a webhook's
    assert answers[4] == (400, {"error": "the body is not JSON"})
    pipeline = app[keys.PIPELINE]
    assert pipeline.accepted == {"dialer": 1}  # stored once, under the source's name
    assert +pipeline.rejected == {"unauthorized": 1, "malformed": 1, "bad_value": 1}
