"""The library's exceptions. Everything it raises on purpose is an :class:`FsdlError`."""

from __future__ import annotations


class FsdlError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(FsdlError, ValueError):
    """An environment variable holds a value that cannot be used."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"{name}={value!r} is not valid: expected {expected}")
        self.name = name
        self.value = value
        self.expected = expected


class InvalidImageError(FsdlError, ValueError):
    """Data that is not a usable JPEG or PNG image."""

    def __init__(self, reason: str, *, source: str | None = None) -> None:
        message = f"{source}: {reason}" if source else reason
        super().__init__(message)
        self.reason = reason
        self.source = source


class WeightsUnavailableError(FsdlError):
    """The pretrained backbone weights are neither cached nor downloadable."""


class GraphUnavailableError(FsdlError):
    """The exported backbone graph is missing, unreadable, or not a backbone graph."""


class StorageError(FsdlError):
    """The data's store cannot be used: down, the credentials refused, the bucket missing; the
    message names the store and the setting to check."""


class FeatureCacheError(FsdlError):
    """A feature cache file exists but cannot be read."""


class ModelNotFoundError(FsdlError, LookupError):
    """No registered model version answers to the requested name and alias."""

    def __init__(self, name: str, alias: str, detail: str = "") -> None:
        message = f"no version of model {name!r} has the alias {alias!r}"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.name = name
        self.alias = alias


class RegistrationError(FsdlError):
    """A model version could not be registered completely (nothing was left half-done)."""


class UnsafeModelError(FsdlError):
    """A registered model is refused because loading it could run code (not skops, or untrusted types)."""


class IncompatibleModelError(FsdlError):
    """A registered model that cannot serve here: another backbone's features, or other classes."""


class NoUsableCandidateError(FsdlError):
    """Every candidate failed to train; nothing can be registered."""


class RegistryRefusedError(FsdlError):
    """The model registry refused or failed a request made as a person; ``reason`` says which way:
    ``unreachable``, ``login`` (401), ``forbidden`` (403), ``conflict`` (the alias moved meanwhile)
    or ``failed`` (anything else; the log has MLflow's answer)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
