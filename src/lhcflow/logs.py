"""Logging for workflow stages: Python logging and progress bars go to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from lhcflow.errors import InputError


@contextlib.contextmanager
def log_to(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send stdout, stderr (tqdm progress bars) and ``logging`` to ``path`` for the block.

    A failure's traceback goes to the log. An :class:`~lhcflow.errors.InputError` (bad config or data,
    which the user can fix) becomes one line on the terminal's stderr and exit status 1; any other
    exception propagates with its traceback.
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
        except InputError as err:
            logger.exception("stage failed: %s: %s", type(err).__name__, err)
            print(f"lhcflow: {' '.join(str(err).split())} (details: {path})", file=sys.__stderr__, flush=True)
            raise SystemExit(1) from None
        except BaseException as err:
            logger.exception("stage failed: %s: %s", type(err).__name__, err)
            raise
        finally:
            logger.removeHandler(handler)


def snakemake_log(snakemake) -> str | None:
    """The first log file of a Snakemake job, if it declared one."""
    return str(snakemake.log[0]) if len(snakemake.log) else None
