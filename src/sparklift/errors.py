"""sparklift's exceptions.

Every error that users should act on is one of these. Each subclasses the
built-in exception a Python user would catch for it (``ValueError`` for bad
input, ``TypeError`` for a wrong column type), so ``except ValueError`` keeps
working. When one is raised inside a Spark task, :mod:`sparklift._spark`
carries it back to the driver and raises the same class there with the same
message, instead of a traceback from deep inside Spark.
"""

from __future__ import annotations


class SparkliftError(Exception):
    """Base class of sparklift's errors."""


class InvalidInputError(SparkliftError, ValueError):
    """Input data is unusable: the message names the column, the count of bad rows and an example."""


class PathExistsError(InvalidInputError, FileExistsError):
    """A save or an output would replace an existing path, and overwriting was not asked for.

    One class for every ``save`` and command output, caught as a
    ``FileExistsError`` or as an :class:`InvalidInputError` alike.
    """


class InvalidColumnTypeError(SparkliftError, TypeError):
    """A column has a type the operation does not accept."""


class NotFittedError(SparkliftError, ValueError, AttributeError):
    """A model was used before it was fitted (as scikit-learn's NotFittedError)."""


class ModelFormatError(SparkliftError, ValueError):
    """A saved model is damaged, from an unknown format version, or not a sparklift model."""


class ResourceLimitError(SparkliftError, ValueError):
    """Work would exceed a configured size limit (for example the rows in one group)."""


class FitFailedError(SparkliftError, ValueError):
    """Every fit failed, so there is no model to use (as scikit-learn's "All the fits failed").

    ``grouped_model``, when set, is the :class:`~sparklift.grouped.GroupedModel`
    whose ``failed_groups()`` hold every group's error.
    """

    grouped_model: object = None

    def __reduce__(self) -> tuple:
        # The GroupedModel holds a DataFrame of this session: it does not travel.
        return (type(self), self.args)


class WorkerError(SparkliftError, RuntimeError):
    """Spark's Python workers could not run sparklift's task: they cannot import
    sparklift (another Python than the driver's), or one died (a crash, an
    exit, or the operating system killing it for memory)."""


class TaskError(SparkliftError, RuntimeError):
    """An exception raised in a Spark task that could not travel back as itself.

    Some exceptions cannot be rebuilt from their pickle (a custom ``__init__``
    with required arguments, PySpark's own errors); this one carries the
    original's class name (``type_name``), its message and the task's
    traceback (``remote_traceback``) instead.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{type_name}: {message}\n\nRaised in a Spark task:\n{remote_traceback}")
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple:
        return (type(self), (self.type_name, self.message, self.remote_traceback))


def first_line(message: object) -> str:
    """The first line of an error message (messages of scikit-learn's run to paragraphs)."""
    text = str(message).strip()
    return text.splitlines()[0] if text else ""


def count_of(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 row", "4 rows"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class CountedWarning(UserWarning):
    """A warning about rows or groups that were handled, not dropped: ``count`` says how many."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


#: Errors that may cross from a Spark task to the driver, by class name.
TRANSPORTABLE: dict[str, type[SparkliftError]] = {
    cls.__name__: cls
    for cls in (
        SparkliftError,
        InvalidInputError,
        InvalidColumnTypeError,
        NotFittedError,
        ModelFormatError,
        ResourceLimitError,
    )
}
