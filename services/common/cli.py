"""The `lanesight` command line: serve a service, validate config, and each service's tools."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from lanesight.common import registry
from lanesight.common.app import ServiceApp
from lanesight.common.config import (
    SERVICE_NAMES,
    ConfigError,
    LanesightConfig,
    load_config,
    missing_files,
)
from lanesight.common.logs import setup_logging

log = logging.getLogger(__name__)


def create_app(service: str, config: LanesightConfig) -> ServiceApp:
    """Build the named service's ServiceApp with its declared factory."""
    factory = registry.load_object(registry.service(service).create_app)
    app = factory(config)
    if not isinstance(app, ServiceApp):
        raise TypeError(f"{registry.service(service).create_app} returned {app!r}")
    return app


def load_config_or_exit(path: str | None, check_files: bool = True) -> LanesightConfig:
    """Load config, printing every error with its key and exiting 2 when invalid (files
    it names that cannot be read included, unless check_files is false)."""
    try:
        config = load_config(path)
        problems = missing_files(config) if check_files else []
        if problems:
            raise ConfigError(path or "<defaults>", problems)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    return config


def _serve(args: argparse.Namespace) -> int:
    if args.validate_config:
        try:
            load_config_or_exit(args.config)
        except SystemExit as exc:
            return int(exc.code or 2)
        print(f"{args.config or '<defaults>'}: configuration is valid")
        return 0
    config = load_config_or_exit(args.config)
    setup_logging(config.logging.level, config.logging.format, args.service)
    from lanesight.common.server import serve_forever

    try:
        app = create_app(args.service, config)
    except ConfigError as exc:  # a setting only the running host can check (e.g. its name)
        print(exc, file=sys.stderr)
        return 2
    return run_service(serve_forever(app, config, args.port))


# How long a stopped service waits for worker threads (a blocking open or read in a
# library's thread) before it exits without them: the service's own work is done by then.
_THREADS_GRACE_S = 5.0


def run_service(main: Coroutine[Any, Any, int]) -> int:
    """asyncio.run for a service's main coroutine, but one that always exits.

    asyncio.run waits for the default executor's threads without a limit, and the
    interpreter waits for every worker thread at exit: one call stuck in a thread (a
    serial port that never answers, a camera read) would keep a stopped service alive
    until it is killed. Here they get _THREADS_GRACE_S, then the process exits anyway
    (its state is on disk and its telemetry flushed: the service stopped first).
    """
    loop = asyncio.new_event_loop()
    try:
        code = loop.run_until_complete(main)
        loop.run_until_complete(loop.shutdown_asyncgens())
        deadline = time.monotonic() + _THREADS_GRACE_S  # one grace for every thread
        try:
            loop.run_until_complete(
                asyncio.wait_for(loop.shutdown_default_executor(), _THREADS_GRACE_S)
            )
        except TimeoutError:
            pass
    finally:
        loop.close()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.is_alive() and not t.daemon
    ]
    if stuck:
        log.warning("stopped; exiting without worker threads still busy: %s", ", ".join(stuck))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _validate(args: argparse.Namespace) -> int:
    try:
        load_config_or_exit(args.config, check_files=not args.offline)
    except SystemExit as exc:
        return int(exc.code or 2)
    print(f"{args.config}: configuration is valid")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every service's subcommands."""
    parser = argparse.ArgumentParser(
        prog="lanesight", description="AI loss prevention for retail checkout lanes."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run one service until SIGTERM/SIGINT")
    serve.add_argument("service", choices=SERVICE_NAMES)
    serve.add_argument("--config", help="TOML or YAML config file (LANESIGHT_* env overrides)")
    serve.add_argument("--port", type=int, help="listen port (0 = any free port)")
    serve.add_argument(
        "--validate-config",
        action="store_true",
        help="check the config, print every error with its key, and exit",
    )
    serve.set_defaults(handler=_serve)
    validate = sub.add_parser("validate-config", help="check a config file and exit")
    validate.add_argument("config")
    validate.add_argument(
        "--offline",
        action="store_true",
        help="do not check that the files it names (certificates, tokens) exist, e.g. when"
        " checking manifests away from the pod",
    )
    validate.set_defaults(handler=_validate)
    evaluate = sub.add_parser("eval", help="measure quality: vision, barcodes, fusion rules")
    eval_targets = evaluate.add_subparsers(dest="eval_target", required=True)
    # Each service's CLI module and each "lanesight.cli" entry point may define
    # register(subparsers) and register_eval(eval_targets).
    for name in registry.cli_modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not exc.name or not name.startswith(exc.name):
                raise
            continue
        register: Callable[[argparse._SubParsersAction], None] | None = getattr(
            module, "register", None
        )
        if register is not None:
            register(sub)
        register_eval = getattr(module, "register_eval", None)
        if register_eval is not None:
            register_eval(eval_targets)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lanesight` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
