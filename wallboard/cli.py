"""Command line: serve, check-config, plugins, new-plugin, replay, journal, report."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wallboard import __version__
from wallboard.config.file import ConfigError, host_arg, port_arg
from wallboard.config.settings import load_settings
from wallboard.config.store import NAME, NAME_RULE, BoardStore
from wallboard.config.store_playlists import PlaylistStore
from wallboard.ingest import backfill_cli, reportcli
from wallboard.journal import cli as journal_cli
from wallboard.journal.interface import JournalError
from wallboard.replay import player as replay
from wallboard.server.plugins import build_registry, make_plugin_manager, plugin_info, source_check


def _serve(args: argparse.Namespace) -> int:
    from wallboard.server import keys
    from wallboard.server.app import create_app
    from wallboard.server.connections import raise_nofile_limit, serve

    pm = make_plugin_manager()
    # Every problem of the file at once, as check-config and a run-time reload name them.
    settings = load_settings(args.config, source_check(build_registry(pm)))
    # The settings stay as the file says: a reload compares the file with them.
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    raise_nofile_limit()  # before the app: server.max_connections is fitted to it
    app = create_app(settings, plugin_manager=pm, config_path=args.config)
    where = args.config or "the embedded demo configuration"

    def ready(listening: int) -> None:
        # Only once start-up succeeded (journal open and folded back) and the port is open.
        print(f"wallboard {__version__}: serving {where} on http://{host}:{listening}/",
              flush=True)

    try:
        serve(app, host, port, app[keys.CONNECTIONS], ready)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def _check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.file, source_check(build_registry(make_plugin_manager())))
    # The editor's boards: --boards DIR, else the data directory's boards.d when there is one.
    folder = Path(args.boards) if args.boards else Path(settings.journal.data_dir) / "boards.d"
    if args.boards and not folder.is_dir():
        raise ConfigError([f"{folder}: not a directory"])
    store = BoardStore(folder)
    problems = [line for name in store.names() for line in store.check_file(store.path(name),
                                                                           settings)]
    problems += [f"{p}: the file name is not a board name: {NAME_RULE}"
                 for p in sorted(folder.glob("*.yaml")) if not NAME.fullmatch(p.stem)]
    # Playlists name the store's valid boards and, with access off, the config's (or its
    # default one): with access on, the store's TV tokens must not open a config board.
    lists = PlaylistStore(folder / "playlists")
    boards = {*([] if settings.access.enabled else settings.boards or ["overview"]),
              *(n for n in store.names() if not store.check_file(store.path(n), settings))}
    problems += [line for name in lists.names() for line in lists.check_file(lists.path(name),
                                                                           boards)]
    problems += [f"{p}: the file name is not a playlist name: {NAME_RULE}"
                 for p in sorted(lists.directory.glob("*.yaml")) if not NAME.fullmatch(p.stem)]
    if problems:
        raise ConfigError(problems)
    count = len(store.names()) + len(lists.names())
    edited = f", {count} in {folder}" if count else ""
    print(f"{args.file}: OK ({len(settings.queues)} queues, {len(settings.sources)} sources, "
          f"{len(settings.boards)} boards{edited})")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    pm = make_plugin_manager()
    for item in plugin_info(pm, build_registry(pm)):
        version = f" {item['version']}" if item["version"] else ""
        types = ", ".join(item["source_types"]) or "-"
        print(f"{item['name']}{version}: source types: {types}; hooks: {', '.join(item['hooks'])}")
    return 0


def _new_plugin(args: argparse.Namespace) -> int:
    from wallboard.kit.scaffold import ScaffoldError, write_plugin

    taken = build_registry(make_plugin_manager()).types
    try:
        root = write_plugin(args.name, args.style, Path(args.dir), taken)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {root}/ ({args.style} source type {args.name!r}); next:\n"
          f"  cd {root} && pip install -e '.[test]' && pytest")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="wallboard", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wallboard {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (no --config: the demo)")
    serve.add_argument("--config", help="YAML configuration file")
    serve.add_argument("--host", type=host_arg, help="listen address (overrides server.host)")
    serve.add_argument("--port", type=port_arg, help="listen port (overrides server.port)")
    serve.set_defaults(func=_serve)
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.add_argument("--boards", help="a boards.d directory of the board editor "
                       "(default: boards.d in journal.data_dir, when it exists)")
    check.set_defaults(func=_check_config)
    plugins = sub.add_parser("plugins", help="list plugins and the source types they provide")
    plugins.set_defaults(func=_plugins)
    new = sub.add_parser("new-plugin", help="write a ready source plugin package to start from")
    new.add_argument("name", help="the source type name, e.g. acme_pbx")
    new.add_argument("--style", choices=("poll", "push"), default="poll",
                     help="poll: ask an HTTP API every interval; push: hold a connection")
    new.add_argument("--dir", default=".", help="where to create the NAME/ directory")
    new.set_defaults(func=_new_plugin)
    replay.add_parser(sub)
    # `journal import` folds: it lives in the ingest layer, which the journal may not import.
    journal_commands = journal_cli.add_parser(sub)
    backfill_cli.add_parser(journal_commands)
    backfill_cli.add_rebuild_parser(journal_commands)
    reportcli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `wallboard` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except JournalError as exc:
        print(f"error: journal: {exc}", file=sys.stderr)
        return 2
