"""Command line: ``python -m deploy.stack {up,render,render-compose,render-nginx}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.stack.config import ROOT, ServiceLimits, StackConfig
from deploy.stack.render import render_nginx, render_stack


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy.stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="render into the run dir and run it in the foreground")
    up.add_argument("--run-dir", type=Path, default=ROOT / "run")
    up.add_argument(
        "--only", help="comma-separated Procfile names to start (default: all)", default=None
    )

    render = commands.add_parser("render", help="render the run dir without starting it")
    render.add_argument("--run-dir", type=Path, default=ROOT / "run")

    commands.add_parser(
        "render-compose",
        help="re-render deploy/nginx/compose.conf and deploy/prometheus/prometheus.compose.yml",
    )

    nginx = commands.add_parser("render-nginx", help="render the NGINX template")
    nginx.add_argument(
        "--upstream",
        action="append",
        required=True,
        metavar="HOST:PORT",
        help="one replica (or Service) address; repeat for each",
    )
    nginx.add_argument("--out", type=Path, required=True, help="file to write ('-': stdout)")
    nginx.add_argument("--listen", default="8080", help="public listen address or port")
    nginx.add_argument(
        "--status-listen", default="127.0.0.1:8081", help="stub_status listen address"
    )
    nginx.add_argument("--rate-limit-rps", type=int, default=0, help="0: no rate limit")
    nginx.add_argument("--pid-file", default="/tmp/nginx.pid")
    nginx.add_argument("--temp-dir", default="/tmp")
    nginx.add_argument("--access-log", default="/dev/stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "render-nginx":
        text = render_nginx(
            args.upstream,
            listen=args.listen,
            status_listen=args.status_listen,
            limits=ServiceLimits.from_service({}),
            rate_limit_rps=args.rate_limit_rps,
            pid_file=args.pid_file,
            temp_dir=args.temp_dir or None,
            access_log=args.access_log,
        )
        if str(args.out) == "-":
            sys.stdout.write(text)
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
        return 0

    if args.command == "render-compose":
        from deploy.stack.compose import write_compose_files

        for path in write_compose_files():
            print(f"rendered {path.relative_to(ROOT)}")
        return 0

    from deploy.stack.runner import StackError, run_stack

    try:
        config = StackConfig.load()
        run = render_stack(config, args.run_dir)
        if args.command == "render":
            print(f"rendered {run.path}")
            return 0
        only = args.only.split(",") if args.only else None
        return run_stack(config, run, only)
    except (StackError, ValueError) as exc:
        print(f"deploy.stack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
