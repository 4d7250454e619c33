"""Logging for workflow stages: Python logging and progress bars go to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def log_to(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send stdout, stderr (tqdm progress bars) and ``logging`` to ``path`` for the block.

    Exceptions are written to the log as well before they propagate, so a failed job's log
    says why it failed.
    """
    logger = logging.getLogger("lhcflow")
    if path is None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        yield logger
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as stream, \
            contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            yield logger
        except BaseException as err:
            logger.error("stage failed: %s: %s", type(err).__name__, err)
            raise
        finally:
            logger.removeHandler(handler)


def snakemake_log(snakemake) -> str | None:
    """The first log file of a Snakemake job, if it declared one."""
    return str(snakemake.log[0]) if len(snakemake.log) else None
