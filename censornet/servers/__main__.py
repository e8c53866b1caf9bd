"""``python -m censornet.servers ROLE --state STATE_DIR``: run one namespace's lab servers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from censornet import topology
from censornet.servers.roles import run_role

SERVER_ROLES = (topology.INET, *(isp.name for isp in topology.ISPS))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, log to stderr, run the role until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m censornet.servers", description=__doc__)
    parser.add_argument("role", choices=SERVER_ROLES)
    parser.add_argument("--state", type=Path, required=True, help="the lab's state directory")
    parser.add_argument(
        "--debug", action="store_true", help="debug logging (connection ends, asyncio)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.debug else logging.INFO,
        format=f"%(asctime)s {args.role} %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(run_role(args.role, args.state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
