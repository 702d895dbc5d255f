"""The ``recserve`` command: generate, build, evaluate, serve, demo (plus ``app.jobs``,
``app.batch.commands``, ``app.rollout.commands``, ``app.webhooks.commands`` and
``app.monitoring.commands``).

Heavy modules (Feast, onnxruntime, pandas) are imported inside each command so ``--help``
answers at once.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.metadata
import os
import shutil
import sys
import threading
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from app.batch.commands import add_batch_commands
from app.demo import port_in_use
from app.jobs import add_engine_arguments, add_job_commands, build_with_events, with_engine
from app.monitoring.commands import add_drift_command
from app.observability.logging import configure_batch_logging
from app.rollout.commands import add_rollout_command
from app.settings import Settings
from app.webhooks.commands import add_webhooks_command

if TYPE_CHECKING:
    from app.training.evaluate import ServedList


DESCRIPTION = (
    "A recommendation service. Build a model from interaction data (RecBole atomic files), "
    "measure it offline, and serve recommendations, similar items and content blocks over "
    "HTTP; data, features and models live in the --home directory. Try it with 'recserve "
    "demo'; with your own data, 'recserve build --data DIR' then 'recserve serve'. "
    "'recserve COMMAND --help' describes each command."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.home is not None:
        # Exported, not just passed: uvicorn workers rebuild Settings from the environment.
        os.environ["RECSERVE_HOME"] = str(args.home.resolve())
    settings = Settings()
    configure_batch_logging(settings.log_format)
    handler = args.handler
    return int(handler(args, settings) or 0)


def run() -> NoReturn:
    """The ``recserve`` console script: ``main``, then the interpreter's own exit work
    (joining threads, ``atexit`` handlers, flushing output), then ``os._exit`` with the
    command's status, skipping the interpreter's teardown.

    Feast reads Parquet through Arrow, whose thread pool may still hold a read-ahead buffer
    backed by a Python object when a command returns. If that worker releases it during the
    teardown, taking the GIL ends the thread inside a C++ frame and the process aborts
    (SIGABRT, "terminate called without an active exception"): a batch job that did its
    work would report failure to its scheduler, a few times in a hundred runs."""
    try:
        code = main()
    except SystemExit as stop:  # argparse's errors and --help
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    # What the interpreter does first on exit: shut down thread pool executors, then wait
    # for the other non-daemon threads (joining those alone would wait on idle workers).
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds), refused with a message naming the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; expected 0 or more")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts), refused with a message naming the value."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 is not a count; expected 1 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recserve", description=DESCRIPTION)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {importlib.metadata.version('recserve')}"
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="state directory (default: $RECSERVE_HOME or ./.recserve)",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="write a synthetic shop in RecBole atomic format")
    gen.add_argument("--out", type=Path, required=True, help="parent directory of the dataset")
    gen.add_argument(
        "--name", default="shop", help="dataset name: files OUT/NAME/NAME.inter, ... (default shop)"
    )
    gen.add_argument("--users", type=int, default=2000, help="users (default 2000)")
    gen.add_argument("--items", type=int, default=800, help="catalogue items (default 800)")
    gen.add_argument("--events", type=int, default=60_000, help="interactions (default 60000)")
    gen.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="random seed: the same seed and sizes give the same files (default 0)",
    )
    gen.set_defaults(handler=_generate)

    build = sub.add_parser("build", help="ingest data, build Feast features, train and publish")
    build.add_argument(
        "--data",
        type=Path,
        required=True,
        help="dataset directory in RecBole atomic format (DIR/NAME.inter, ...)",
    )
    add_engine_arguments(build)
    build.set_defaults(handler=_build)

    evaluate = sub.add_parser(
        "evaluate",
        help="offline metrics of the served model beside tuned baselines",
        description="Warm: each user's last 20% of interactions by time held out. Cold: 10% "
        "of the users, with no history left, over several draws (seeds 0 .. N-1), reported "
        "as mean ± sd and, per baseline, the draws the served model wins. Each protocol and "
        "draw builds the served model on its train part as `recserve build` does and asks "
        "the serving engine; baselines are tuned on a validation split of the same train part.",
    )
    evaluate.add_argument("--data", type=Path, required=True, help="RecBole atomic dataset dir")
    evaluate.add_argument(
        "--protocol",
        choices=("warm", "cold", "all", "repeat"),
        default="all",
        help="warm: each user's last 20%% of interactions held out; cold: 10%% of users with "
        "no history left; all: both (default); repeat: repeat mode on a repeat-inclusive split",
    )
    evaluate.add_argument("--out", type=Path, default=None, help="default: HOME/evaluation")
    evaluate.add_argument(
        "--cold-draws",
        type=positive_int,
        default=None,
        help="draws of cold users, seeds 0 .. N-1, each with its own build (default 10)",
    )
    evaluate.add_argument(
        "--tuning-budget",
        type=positive_int,
        default=None,
        help="seconds of wall-clock time each build's tuning may take (default: what "
        "`recserve build` gives data of that size); a busy machine needs more for the same search",
    )
    evaluate.set_defaults(handler=_evaluate)

    serve = sub.add_parser("serve", help="serve the published model over HTTP")
    _serve_args(serve)
    serve.set_defaults(handler=_serve)

    demo = sub.add_parser(
        "demo",
        help="generate a synthetic shop, build it, and serve it",
        description="Generate a synthetic shop under HOME/source, build it (with every event "
        "logged so far) and serve it. Run again on the same home, it reuses the last build "
        "while the shop, the build settings and the recserve version are unchanged, so events "
        "posted to the demo stay in the users' profiles; otherwise it rebuilds, events included. "
        "Checks the port first: a busy one stops it before building.",
    )
    _serve_args(demo)
    demo.set_defaults(handler=_demo)

    db = sub.add_parser("db", help="the PostgreSQL database of record (RECSERVE_DATABASE_URL)")
    db_sub = db.add_subparsers(required=True, metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="apply pending schema migrations")
    upgrade.set_defaults(handler=_db_upgrade)
    retain = db_sub.add_parser(
        "retain-events", help="drop the event log's daily partitions older than --days"
    )
    retain.add_argument("--days", type=non_negative_int, required=True, help="days to keep")
    retain.set_defaults(handler=_db_retain_events)

    token = sub.add_parser(
        "user-token",
        help="mint a user token (X-User-Token) with RECSERVE_AUTH__USER_TOKEN_SECRET",
    )
    token.add_argument("user_id", help="the user the token vouches for")
    token.add_argument(
        "--ttl",
        type=int,
        default=None,
        help="seconds it stays valid (default: RECSERVE_AUTH__USER_TOKEN_TTL_SECONDS)",
    )
    token.set_defaults(handler=_user_token)

    add_job_commands(sub)
    add_batch_commands(sub)
    add_webhooks_command(sub)
    add_rollout_command(sub)
    add_drift_command(sub)
    return parser


def _serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=None, help="uvicorn workers (default 1)")


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url is None:
        print("RECSERVE_DATABASE_URL is not set: nothing to migrate", file=sys.stderr)
        return 2
    from app.storage.postgres import upgrade
    from app.storage.postgres.migrate import current

    url, schema = settings.database_url.get_secret_value(), settings.database.schema_name
    upgrade(url, schema)
    print(f"schema {schema} at revision {current(url, schema)}")
    return 0


def _db_retain_events(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url is None:
        print(
            "RECSERVE_DATABASE_URL is not set: the event log is not in PostgreSQL", file=sys.stderr
        )
        return 2
    import asyncio
    import datetime as dt

    from app.events.log_postgres import PostgresEventLog, unavailable
    from app.storage.postgres import database_from_settings

    async def drop() -> list[str]:
        log = PostgresEventLog(database_from_settings(settings, unavailable))
        try:
            today = dt.datetime.now(dt.UTC).date()
            return await log.drop_days_before(today - dt.timedelta(days=args.days))
        finally:
            await log.close()

    dropped = asyncio.run(drop())
    print(f"dropped {len(dropped)} partitions" + (f": {', '.join(dropped)}" if dropped else ""))
    return 0


def _user_token(args: argparse.Namespace, settings: Settings) -> int:
    from app.api.user_tokens import mint_user_token

    secret = settings.auth.user_token_secret
    if secret is None:
        print("error: RECSERVE_AUTH__USER_TOKEN_SECRET is not set", file=sys.stderr)
        return 2
    ttl = args.ttl if args.ttl is not None else settings.auth.user_token_ttl_seconds
    if ttl <= 0:
        print(f"error: --ttl must be positive, got {ttl}", file=sys.stderr)
        return 2
    print(mint_user_token(secret.get_secret_value(), args.user_id, ttl))
    return 0


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from app.data.synthetic import generate_shop

    path = generate_shop(
        args.out,
        n_users=args.users,
        n_items=args.items,
        n_events=args.events,
        seed=args.seed,
        name=args.name,
    )
    print(f"wrote synthetic dataset to {path}")
    return 0


def _build(args: argparse.Namespace, settings: Settings) -> int:
    from app.batch.gates import BuildRefused
    from app.batch.lock import BatchBusy, batch_lock
    from app.data.types import DataFormatError
    from app.training.engine import EngineUnavailable

    settings = with_engine(settings, args)
    try:
        with batch_lock(settings.home, "build"):
            print(build_with_events(settings, args.data).format())
    except BatchBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BuildRefused, DataFormatError) as exc:
        print(
            f"error: build refused: {exc}.\nNothing was published: the data, features and "
            "model in use are unchanged (`recserve data history` lists the runs).",
            file=sys.stderr,
        )
        return 2
    return 0


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from app.data.types import DataFormatError
    from app.training.evaluate import DEFAULT_COLD_DRAWS, PROTOCOLS, evaluate

    started = time.perf_counter()
    protocols = PROTOCOLS if args.protocol == "all" else (args.protocol,)
    draws = DEFAULT_COLD_DRAWS if args.cold_draws is None else args.cold_draws
    try:
        if args.protocol == "repeat":
            from app.training.evaluate_repeat import evaluate_repeat

            report = evaluate_repeat(settings, args.data, partial(served_top_k, repeat=True))
        else:
            report = evaluate(
                settings,
                args.data,
                served_top_k,
                protocols=protocols,
                cold_draws=draws,
                tuning_budget_seconds=None
                if args.tuning_budget is None
                else float(args.tuning_budget),
            )
    except DataFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    markdown, _ = report.write(args.out or settings.home / "evaluation")
    print(
        markdown.read_text(),
        f"\nwritten to {markdown.parent} in {time.perf_counter() - started:.0f}s",
    )
    return 0


def served_top_k(
    settings: Settings, user_ids: Sequence[str], k: int, *, repeat: bool = False
) -> list[ServedList]:
    """Answer every user through the engine ``/recommend`` uses, cache bypassed (``repeat``:
    in repeat mode)."""
    import asyncio

    from app.bootstrap import build_engine, close_engine
    from app.serving.types import RecommendRequest
    from app.training.evaluate import ServedList

    async def answer_all() -> list[ServedList]:
        engine = await build_engine(settings)
        try:
            answers = []
            for user_id in user_ids:
                reply = await engine.recommend(
                    RecommendRequest(user_id, k, use_cache=False, repeat=repeat)
                )
                answers.append(ServedList([i.item_id for i in reply.items], reply.source.value))
            return answers
        finally:
            await close_engine(engine)

    return asyncio.run(answer_all())


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.api.api_keys import AuthConfigError
    from app.api.auth import load_key_ring
    from app.bootstrap import load_current_model
    from app.experiments.config import ExperimentConfigError
    from app.observability.logging import log_config
    from app.serving.experiments.strategies import load_experiment_setup
    from app.serving.model.ranking import ModelLoadError

    try:
        # Checked here, before any worker starts: a worker failing its start-up only logs a
        # traceback, and with --workers > 1 uvicorn then exits 0 as if stopped cleanly.
        load_current_model(settings)
        load_experiment_setup(settings.experiments_file, settings.model_root)
        load_key_ring(settings.auth)
    except (ModelLoadError, ExperimentConfigError, AuthConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    host = args.host or settings.api.host
    port = args.port or settings.api.port
    busy = port_in_use(host, port)
    if busy is not None:
        print(f"error: {busy}", file=sys.stderr)
        return 2
    workers = args.workers or settings.api.workers
    os.environ["RECSERVE_API__WORKERS"] = str(workers)  # read by each worker's cache set-up
    if workers > 1:
        _prepare_multiprocess_metrics(settings.home / "prometheus")
    uvicorn.run(
        "app.api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # httptools, refusing oversized heads (431) as they arrive
        http="app.api.head_limits:GuardedHttpToolsProtocol",
        access_log=False,
        log_level="info",
        log_config=log_config("INFO"),  # JSON lines with request and trace ids
    )
    return 0


def _prepare_multiprocess_metrics(directory: Path) -> None:
    # Samples of a previous run would be summed into this one's; start empty. The directory
    # itself may be a mount point (a replica's own tmpfs): only its contents go.
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.data.synthetic import generate_shop
    from app.demo import build_fingerprint, record_build, reusable_build

    busy = port_in_use(args.host or settings.api.host, args.port or settings.api.port)
    if busy is not None:  # before minutes of building, not after
        print(f"error: {busy}", file=sys.stderr)
        return 2
    source = generate_shop(settings.home / "source", seed=0)
    fingerprint = build_fingerprint(settings, source)
    version = reusable_build(settings, fingerprint)
    if version is not None:
        print(
            f"reusing model {version} in {settings.home}: shop and build settings unchanged "
            "(events posted since stay in the profiles; delete the directory for a fresh shop)"
        )
    else:
        print(build_with_events(settings, source).format())
        record_build(settings, fingerprint)
    return _serve(args, settings)


if __name__ == "__main__":
    run()
