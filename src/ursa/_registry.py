"""The one table of ursa's estimators: which classes exist, where they live, and their task names.

Everything that needs to know the estimators reads :data:`ESTIMATORS`: the lazy attributes of the
``ursa`` package, :func:`ursa.load` (which rebuilds only the classes listed here, importing their
modules itself, never a module named by a file), the HTML report, ``ursa demo``, and the command
line (``ursa fit TASK``). An estimator class joins by one row here plus the :func:`register`
decorator on its definition, which refuses a class the table does not name.

Nothing here imports an estimator module until a function asks for its class: ``import ursa``
stays free of the modules (and their optional dependencies) that a process never uses.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["ESTIMATORS", "EstimatorEntry", "available_tasks", "entry_for", "estimator_class",
           "register", "registered_class", "task_names"]


@dataclass(frozen=True)
class EstimatorEntry:
    """One estimator of the library.

    Attributes
    ----------
    class_name : str
        The public class, ``ursa.<class_name>``.
    module : str
        The module that defines the class; imported on first use.
    task : str
        The job's short name: the ``KIND`` of ``ursa fit KIND``, the key of the report's and the
        demo's per-job parts.
    description : str
        One line saying what the job gives the user (shown in reports).
    series_input : bool
        True when ``fit`` and the scores take long series ``(T, C)`` rather than a set of
        sequences (the anomaly detector).
    """

    class_name: str
    module: str
    task: str
    description: str
    series_input: bool = False


ESTIMATORS: tuple[EstimatorEntry, ...] = (
    EstimatorEntry("SequenceAutoencoder", "ursa.estimators.autoencoder", "autoencoder",
                   "represent / compress: embeddings and reconstructions"),
    EstimatorEntry("RecurrentClusterer", "ursa.estimators.clusterer", "cluster",
                   "cluster sequences (deep temporal clustering)"),
    EstimatorEntry("RecurrentGAN", "ursa.estimators.gan", "gan",
                   "generate synthetic sequences (TimeGAN)"),
    EstimatorEntry("SequenceAnomalyDetector", "ursa.estimators.anomaly", "detect",
                   "detect anomalies in long series", series_input=True),
)

_BY_CLASS = {entry.class_name: entry for entry in ESTIMATORS}
_BY_TASK = {entry.task: entry for entry in ESTIMATORS}
# Classes whose definition has run its @register decorator.
_CLASSES: dict[str, type] = {}


def task_names() -> list[str]:
    """The task names of every estimator in the table, in table order."""
    return [entry.task for entry in ESTIMATORS]


def entry_for(key) -> EstimatorEntry:
    """The table row of ``key``: a task name, a class name, an estimator class or an instance.

    Raises
    ------
    ValueError
        ``key`` is a string that names no estimator of the table; the message lists the known ones.
    TypeError
        ``key`` is a class or an object that is not one of the table's estimators.
    """
    if isinstance(key, EstimatorEntry):
        return key
    if isinstance(key, str):
        name = key
        entry = _BY_TASK.get(key) or _BY_CLASS.get(key)
    else:
        name = (key if isinstance(key, type) else type(key)).__name__
        entry = _BY_CLASS.get(name)
    if entry is None:
        error = ValueError if isinstance(key, str) else TypeError
        raise error(f"{name!r} is not an ursa estimator; known: "
                    f"{', '.join(e.class_name for e in ESTIMATORS)} (tasks "
                    f"{', '.join(task_names())}).")
    return entry


def estimator_class(key) -> type:
    """The estimator class of ``key`` (task name, class name or table row), importing its module.

    Raises
    ------
    ValueError, TypeError
        ``key`` names no estimator of the table (see :func:`entry_for`).
    ImportError
        The estimator's module is not part of this installation; the message names the job.
    """
    entry = entry_for(key)
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name != entry.module:
            raise
        raise ImportError(f"'{entry.task}' ({entry.class_name}) is not available in this version "
                          "of ursa.") from None
    return getattr(module, entry.class_name)


def available_tasks() -> list[str]:
    """The task names whose estimator can be imported here, in table order."""
    names = []
    for entry in ESTIMATORS:
        try:
            estimator_class(entry)
        except ImportError:
            continue
        names.append(entry.task)
    return names


def register(cls: type) -> type:
    """Class decorator: let :func:`ursa.load` rebuild instances of ``cls``.

    Raises
    ------
    TypeError
        ``cls`` has no row in :data:`ESTIMATORS`, or its row names another module: add (or fix)
        the row first, so that the loader, the report and the command line all know the class.
    """
    entry = _BY_CLASS.get(cls.__name__)
    if entry is None or entry.module != cls.__module__:
        raise TypeError(f"{cls.__module__}.{cls.__name__} is not in ursa's estimator table; add a "
                        "row for it to ESTIMATORS in ursa/_registry.py.")
    _CLASSES[cls.__name__] = cls
    return cls


def registered_class(class_name: str) -> type | None:
    """The registered class called ``class_name``, importing its module from the table when it
    has not been imported yet; None when the table has no such class."""
    if class_name not in _BY_CLASS:
        return None
    if class_name not in _CLASSES:
        estimator_class(class_name)
    return _CLASSES.get(class_name)
