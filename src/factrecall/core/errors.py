"""The errors factrecall raises for users. The CLI prints ``error: <message>`` for these.

``ConfigError`` (bad input: a flag, a config key, a data file) exits with status 2; ``TrainingError`` (a run
that cannot produce a result, e.g. every learning rate diverged) exits with status 1.
"""


class FactrecallError(Exception):
    """Base class of every error meant for a user rather than a traceback."""

    exit_code = 1


class ConfigError(FactrecallError, ValueError):
    """Bad input: the message names the argument, the value received and what is allowed."""

    exit_code = 2


class TrainingError(FactrecallError, RuntimeError):
    """A run failed at run time (diverged, never reached a result); input was valid."""

    exit_code = 1


def check(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds (validation of user input)."""
    if not condition:
        raise ConfigError(message)
