"""Errors in what the user gave (a config, a data file, a field): a stage reports them in one line.

Every such error of the project derives from :class:`InputError` (and from ``ValueError``, as before);
:func:`lhcflow.logs.log_to` writes its traceback to the job log and one line to the terminal.
Anything else is a bug and keeps its traceback.
"""


class InputError(Exception):
    """Bad input the user can fix; the message names the file or config key and what to do."""
