"""One SparkSession per process, configured from ``SparkSettings``.

``getOrCreate`` hands back the running session, so every stage of a build (and every test of a
test session) shares one JVM: starting it costs seconds, far more than a small stage.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.settings import SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

APP_NAME = "recserve-batch"


def spark_session(settings: SparkSettings) -> SparkSession:
    """The process's session on ``settings.master`` (created on first use). No web UI: the
    build reports its own stage timings, and the UI would take a port."""
    from pyspark.sql import SparkSession

    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": settings.driver_host,
        "spark.driver.bindAddress": settings.driver_host,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        # Arrow moves the collected tables to Python column by column, not row by row.
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **settings.conf,
    }
    builder = SparkSession.builder.master(settings.master).appName(APP_NAME)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    # py4j logs each connection it closes at INFO, also from finalizers at interpreter exit,
    # when the streams a test runner or a pipe gave the handlers may already be closed.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return session
