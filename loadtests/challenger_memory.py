"""What serving a challenger beside the champion costs a worker in memory.

On a copy of a built home, starts ``recserve serve`` (one worker), answers ``--requests``
recommendations, reads the worker's RSS/PSS/USS; then publishes a second version (a copy of
the served model under a new name) as the challenger, waits until the worker serves it to its
share of users, answers the same requests again (both models now score) and reads the memory
again. The difference is the price of a rollout.

    python -m loadtests.challenger_memory --home /tmp/shop-home --port 18520
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from app.artifacts import MANIFEST_FILE, current_version, point_challenger, read_manifest
from loadtests.server import process_memory, recserve_argv, running


def _worker(server: psutil.Process) -> int:
    """The pid holding the model: the largest process of the server's family."""
    family = [server, *server.children(recursive=True)]
    return max(family, key=lambda p: p.memory_info().rss).pid


def _ask(http: httpx.Client, requests: int, first_user: int = 0) -> int:
    """``requests`` recommendations for distinct users; how many the challenger answered."""
    by_challenger = 0
    for n in range(first_user, first_user + requests):
        body = http.get("/recommend", params={"user_id": f"memory-{n}", "k": 10}).json()
        by_challenger += body.get("variant") == "challenger"
    return by_challenger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a built home (left unchanged)")
    parser.add_argument("--port", type=int, default=18520, help="port of the server started")
    parser.add_argument("--requests", type=int, default=400, help="recommendations per phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(args.home, home)
        models = home / "models"
        champion = current_version(models)
        if champion is None:
            raise SystemExit(f"{args.home}: no published model")
        challenger = f"{champion}-challenger"
        files = [f for f in (models / champion).iterdir() if f.is_file()]
        size = sum(f.stat().st_size for f in files) / 2**20
        shutil.copytree(models / champion, models / challenger)
        manifest = read_manifest(models / challenger).model_copy(update={"version": challenger})
        (models / challenger / MANIFEST_FILE).write_text(manifest.model_dump_json())
        env = {
            "RECSERVE_HOME": str(home),
            "RECSERVE_MODEL_POLL_SECONDS": "0.5",
            "RECSERVE_ROLLOUT__DECIDE_SECONDS": "3600",
            "RECSERVE_ROLLOUT__TRAFFIC_SHARE": "0.5",
        }
        with (
            running(recserve_argv(args.port), args.port, env=env) as server,
            httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=10.0) as http,
        ):
            _ask(http, args.requests)
            pid = _worker(psutil.Process(server.pid))
            alone = process_memory([pid])[0]
            point_challenger(models, challenger)
            deadline = time.monotonic() + 30
            while _ask(http, 20, first_user=args.requests) == 0:
                if time.monotonic() > deadline:
                    raise SystemExit("the challenger was not served within 30 s")
            served = _ask(http, args.requests)
            both = process_memory([pid])[0]
    print(
        json.dumps(
            {
                "model_files_mb": round(size, 1),
                "champion_only": alone,
                "with_challenger": both,
                "challenger_answers": served,
                "requests": args.requests,
                "added_mb": {
                    key: round(both[key] - alone[key], 1) for key in ("rss_mb", "pss_mb", "uss_mb")
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
