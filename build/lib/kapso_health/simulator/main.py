"""The simulator's command line (`kapso-health simulate`, `python -m kapso_health.simulator`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from aiohttp import web

from kapso_health.simulator.server import FAULT_KINDS, Faults, Project, Simulator, SimulatorConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8710, help="0 picks a free port")
    parser.add_argument("--numbers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    parser.add_argument("--rate-per-second", type=float, default=5.0, help="0 turns it off")
    parser.add_argument("--rate-per-minute", type=float, default=60.0, help="0 turns it off")
    parser.add_argument(
        "--project",
        action="append",
        type=_project,
        default=[],
        dest="projects",
        metavar="NAME:KEY[,KEY...]:NUMBERS",
        help="serve this Kapso project (repeatable): its keys (a request's X-API-Key picks its "
        "project, any other key gets 401), a fleet of NUMBERS numbers of its own (seeds --seed, "
        "--seed+1, ... in order, so ids differ) and its own health limits (--rate-per-second, "
        "--rate-per-minute, each project counted apart). Replaces --numbers and --api-key",
    )
    parser.add_argument(
        "--latency-ms", type=float, nargs=2, default=(20.0, 80.0), metavar=("MIN", "MAX")
    )
    for name in FAULT_KINDS:
        parser.add_argument(
            f"--fault-{name.replace('_', '-')}",
            type=float,
            default=0.0,
            dest=f"fault_{name}",
            help="probability per health request",
        )
    parser.add_argument(
        "--hang-seconds",
        type=float,
        default=40.0,
        help="how long a timeout fault keeps the request open",
    )
    parser.add_argument("--config-json", default=None, help=argparse.SUPPRESS)


def _project(text: str) -> tuple[str, tuple[str, ...], int]:
    name, sep, rest = text.partition(":")
    keys, sep2, numbers = rest.rpartition(":")
    if not (name and sep and sep2 and keys and numbers.isdigit()):
        raise argparse.ArgumentTypeError(f"expected NAME:KEY[,KEY...]:NUMBERS, got {text!r}")
    return name, tuple(keys.split(",")), int(numbers)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    if args.config_json:
        raw = json.loads(args.config_json)
        raw["faults"] = Faults(**raw.get("faults", {}))
        raw["latency_ms"] = tuple(raw.get("latency_ms", (20.0, 80.0)))
        raw["projects"] = [
            Project(**{**project, "keys": tuple(project["keys"])})
            for project in raw.get("projects", [])
        ]
        return SimulatorConfig(**raw)
    faults = Faults(
        **{name: getattr(args, f"fault_{name}") for name in FAULT_KINDS},
        hang_seconds=args.hang_seconds,
    )
    projects = [
        Project(
            name,
            keys,
            numbers,
            args.seed + index,
            args.rate_per_second or None,
            args.rate_per_minute or None,
        )
        for index, (name, keys, numbers) in enumerate(args.projects)
    ]
    return SimulatorConfig(
        numbers=args.numbers,
        seed=args.seed,
        api_key=args.api_key,
        rate_per_second=args.rate_per_second or None,
        rate_per_minute=args.rate_per_minute or None,
        latency_ms=tuple(args.latency_ms),
        faults=faults,
        projects=projects,
    )


async def serve(config: SimulatorConfig, port: int) -> None:
    """Serve until SIGINT/SIGTERM; the first line printed is the base URL."""
    runner = web.AppRunner(Simulator(config).app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"Kapso simulator listening on http://127.0.0.1:{bound}", flush=True)
    print(f"  legacy base URL:   http://127.0.0.1:{bound}/api/v1", flush=True)
    print(f"  platform base URL: http://127.0.0.1:{bound}/platform/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    try:
        config.all_projects()
    except ValueError as exc:
        print(f"kapso simulator: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(config, args.port))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kapso_health.simulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
