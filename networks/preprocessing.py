"""What turns a user's raw inputs into what a network was trained on, and its outputs back into the user's units.

A :class:`Preprocessing` record travels with every saved model (``model.json``,
see :mod:`networks.model`): the task that trained the network builds it, the
model applies it, so a saved network is fed raw data and never silently gets
the wrong scale (the digits task divides pixels by 16; fed raw pixels, its
network would score 0.95 instead of 0.99 without a word).

    x_network = (x_raw - offset) / scale          per feature (or one number for all)
    y_user    = y_network * target_scale + target_offset      regression targets, series

``offset`` / ``scale`` cover a fixed rescaling (pixels / 16 or / 255) and a
standardisation fitted on the training split (mean, standard deviation), as
scikit-learn's ``StandardScaler`` (``mean_``, ``scale_``) would give.
``image_shape`` says that a flat sample of ``C*H*W`` values is an image
(``(N, C, H, W)`` and ``(N, H, W)`` inputs are flattened in that order), and
``label_names`` what class index ``k`` means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Preprocessing"]


def _vector(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64)
    if array.ndim > 1 or not np.all(np.isfinite(array)):
        raise ValueError(f"preprocessing.{name}: must be a finite number or a list of them, got {value!r}")
    return array


@dataclass(frozen=True, eq=False)
class Preprocessing:
    """Per-feature ``(x - offset) / scale`` on the way in, ``y * target_scale + target_offset`` on the way out.

    Every field is optional: a field left ``None`` does nothing. ``note`` says
    in words what the record does (``"pixels / 16"``, ``"standardised on the
    training split"``), for people reading ``model.json``.
    """

    n_features: int | None = None
    offset: np.ndarray | None = None
    scale: np.ndarray | None = None
    image_shape: tuple[int, int, int] | None = None
    label_names: tuple[str, ...] | None = None
    target_offset: np.ndarray | None = None
    target_scale: np.ndarray | None = None
    note: str = ""
    #: how the columns of a user's file map to features: e.g. ``{"label_column": -1}`` or ``{"x_key": "X", "y_key": "y"}``
    file_format: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("offset", "scale", "target_offset", "target_scale"):
            object.__setattr__(self, name, _vector(getattr(self, name), name))
        for name in ("scale", "target_scale"):
            value = getattr(self, name)
            if value is not None and np.any(value == 0.0):
                raise ValueError(f"preprocessing.{name}: a zero would divide by zero; use 1 for a constant feature")
        if self.image_shape is not None:
            shape = tuple(int(v) for v in self.image_shape)
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"preprocessing.image_shape = {self.image_shape!r}: must be [C, H, W], integers >= 1")
            object.__setattr__(self, "image_shape", shape)
            if self.n_features is None:
                object.__setattr__(self, "n_features", int(np.prod(shape)))
        if self.label_names is not None:
            object.__setattr__(self, "label_names", tuple(str(v) for v in self.label_names))
        if self.n_features is not None:
            object.__setattr__(self, "n_features", int(self.n_features))
            for name in ("offset", "scale"):
                value = getattr(self, name)
                if value is not None and value.ndim == 1 and value.size != self.n_features:
                    raise ValueError(f"preprocessing.{name}: {value.size} values for {self.n_features} features")

    # ------------------------------------------------------------ constructors
    @classmethod
    def scaling(cls, divide_by: float, n_features: int, note: str = "", **fields: Any) -> Preprocessing:
        """Every feature divided by one number (pixels / 16, / 255)."""
        return cls(n_features=n_features, scale=np.asarray(divide_by, dtype=np.float64), note=note or f"features / {divide_by:g}", **fields)

    @classmethod
    def standardize(cls, X_train: np.ndarray, **fields: Any) -> Preprocessing:
        """Per-feature mean and standard deviation of the training rows (a constant feature keeps scale 1)."""
        X_train = np.asarray(X_train, dtype=np.float64).reshape(len(X_train), -1)
        std = X_train.std(axis=0)
        fields.setdefault("note", "standardised: (x - training mean) / training standard deviation")
        return cls(n_features=X_train.shape[1], offset=X_train.mean(axis=0), scale=np.where(std > 0, std, 1.0), **fields)

    # ------------------------------------------------------------------ apply
    def flatten(self, X: np.ndarray) -> np.ndarray:
        """Samples as rows ``(N, n_features)``: images ``(N, C, H, W)`` / ``(N, H, W)`` and one sample ``(n_features,)`` too."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1 and self.n_features is not None and X.size == self.n_features:
            X = X[None]
        X = X.reshape(len(X), -1) if X.ndim > 2 else X
        if X.ndim != 2:
            raise ValueError(f"inputs: expected samples as rows (N, features), got shape {X.shape}")
        if self.n_features is not None and X.shape[1] != self.n_features:
            what = f" (images {list(self.image_shape)})" if self.image_shape else ""
            raise ValueError(f"inputs: {X.shape[1]} features per sample, the model reads {self.n_features}{what}")
        return X

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Raw samples -> what the network reads, ``(N, n_features)`` float64."""
        X = self.flatten(X)
        if self.offset is not None:
            X = X - self.offset
        if self.scale is not None:
            X = X / self.scale
        return X

    def invert_target(self, y: np.ndarray) -> np.ndarray:
        """Network outputs (regression, series) -> the user's units."""
        y = np.asarray(y, dtype=np.float64)
        if self.target_scale is not None:
            y = y * self.target_scale
        if self.target_offset is not None:
            y = y + self.target_offset
        return y

    def apply_target(self, y: np.ndarray) -> np.ndarray:
        """The user's targets -> the network's units (inverse of :meth:`invert_target`)."""
        y = np.asarray(y, dtype=np.float64)
        if self.target_offset is not None:
            y = y - self.target_offset
        if self.target_scale is not None:
            y = y / self.target_scale
        return y

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """JSON-able; :meth:`from_dict` reads it back bit for bit (floats are written with full precision)."""

        def plain(value: np.ndarray | None) -> Any:
            return None if value is None else value.tolist()

        return {
            "n_features": self.n_features,
            "offset": plain(self.offset),
            "scale": plain(self.scale),
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "label_names": list(self.label_names) if self.label_names is not None else None,
            "target_offset": plain(self.target_offset),
            "target_scale": plain(self.target_scale),
            "note": self.note,
            "file_format": dict(self.file_format),
            "rule": "network input = (raw - offset) / scale; user output = network output * target_scale + target_offset",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Preprocessing:
        """Rebuild from :meth:`to_dict` output (``None`` or ``{}``: no preprocessing)."""
        data = dict(data or {})
        data.pop("rule", None)
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"preprocessing: unknown field(s) {unknown}; allowed: {sorted(cls.__dataclass_fields__)}")
        if data.get("image_shape") is not None:
            data["image_shape"] = tuple(data["image_shape"])
        if data.get("label_names") is not None:
            data["label_names"] = tuple(data["label_names"])
        return cls(**data)

    def describe(self) -> str:
        """One line for people: what is done to the inputs."""
        parts = [self.note] if self.note else []
        if self.image_shape:
            parts.append(f"images {'x'.join(map(str, self.image_shape))}")
        if self.label_names is not None:
            parts.append(f"{len(self.label_names)} classes")
        return ", ".join(parts) or "inputs used as they are"
