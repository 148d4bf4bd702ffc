"""Errors the API turns into JSON responses with a status code."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFoundError(ApiError):
    status = 404


class GoneError(ApiError):
    status = 410


class ConflictError(ApiError):
    status = 409


class UnavailableError(ApiError):
    status = 503
