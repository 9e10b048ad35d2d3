"""Errors a user can cause. Each carries a one-line message that the CLI and the app show instead of a traceback."""


class AelabError(Exception):
    """A problem with what the user asked for (bad file, bad option, missing data): show `str(err)`, one line."""


class ImageError(AelabError):
    """An uploaded, drawn or named image cannot be used."""


class CheckpointError(AelabError):
    """A checkpoint file is missing, refused (e.g. a pickle) or does not match its config."""


class ConfigError(AelabError):
    """An option value is invalid (negative size, unknown variant, absurd width...)."""


class DataError(AelabError):
    """A dataset cannot be found or read."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """"1 model", "3 models", "1,200 images": a count and its noun, for the messages ("1 model(s)" read badly)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
