"""Errors in what the user gave (a config, a data file, a field): a stage reports them in one line.

Every such error of the project derives from :class:`InputError` (and from ``ValueError``, as before);
:func:`lhcflow.logs.log_to` writes its traceback to the job log and one line to the terminal.
Anything else is a bug and keeps its traceback.
"""


class InputError(Exception):
    """Bad input the user can fix; the message names the file or config key and what to do."""


class UnknownSettingError(InputError, KeyError):
    """A settings mapping with a key its settings class does not have: a typo (``hiden: 64``) would
    otherwise be dropped and the default used."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


def reject_unknown(what: str, given, known) -> None:
    """Raise :class:`UnknownSettingError` naming every key of ``given`` not in ``known``, with a
    did-you-mean hint."""
    import difflib

    unknown = sorted(set(given) - set(known))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UnknownSettingError(f"unknown {what} setting(s) {', '.join(hints)}; "
                                  f"known: {', '.join(sorted(known))}")
