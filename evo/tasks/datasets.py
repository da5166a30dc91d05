"""Loading and splitting labelled datasets: scikit-learn's digits and user files.

User files are ``.npz`` (arrays under ``x_key`` / ``y_key``, default ``X`` and
``y``) or ``.csv`` (one row per sample, the label in ``label_column``, a header
row optional), read by :mod:`evo.tasks.datafiles`. Splits are stratified and fixed by ``split_seed`` so every run,
evolved or trained, sees the same train / validation / test samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evo.tasks.datafiles import data_file_format, read_csv, read_npz
from networks.preprocessing import Preprocessing


@dataclass(frozen=True)
class Split:
    """A fixed train / validation / test split with integer class labels.

    Samples are stored flat, ``(N, features)``; ``image_shape`` is
    ``(C, H, W)`` when they are images (for convolutional networks).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int] | None = None
    #: how raw samples became these arrays (saved with the model, applied again at inference)
    preprocessing: Preprocessing | None = None


DIGITS_IMAGE_SHAPE = (1, 8, 8)
#: The digits' pixels are 0..16: the networks read them divided by 16.
DIGITS_PREPROCESSING = Preprocessing.scaling(16.0, 64, note="pixels (0..16) / 16", image_shape=DIGITS_IMAGE_SHAPE)
#: MNIST's pixels are 0..255: the networks read them divided by 255.
MNIST_PIXEL_SCALE = 255.0


def load_digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as distributed: pixels 0..16 (flat; images are 1 x 8 x 8)."""
    from sklearn.datasets import load_digits as _load

    data = _load()
    return data.data.astype(np.float64), data.target.astype(np.int64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits as the networks read them: pixels scaled to [0, 1] by :data:`DIGITS_PREPROCESSING`."""
    X, y = load_digits_raw()
    return DIGITS_PREPROCESSING.apply(X), y


def load_npz(path: Path, x_key: str = "X", y_key: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``x_key`` and ``y_key`` from an ``.npz`` file (no pickle allowed)."""
    X, y = read_npz(path, x_key, y_key)
    return X.astype(np.float64, copy=False), y


def load_csv(path: Path, label_column: str | int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Numeric features and a label column from a ``.csv`` file, header row optional.

    ``label_column`` is a column index (negative counts from the end) or, when
    the file has a header row, a column name.
    """
    table = read_csv(path, label_column, column_field="task.label_column", text_column=True)
    return table.other_floats(), table.picked()


def load_dataset_file(path: str | Path, x_key: str = "X", y_key: str = "y", label_column: str | int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the file suffix; raises ValueError naming the problem."""
    path = Path(path)
    if data_file_format(path) == "npz":
        X, y = load_npz(path, x_key, y_key)
    else:
        X, y = load_csv(path, label_column)
    if len(X) != len(y):
        raise ValueError(f"task.path = {str(path)!r}: {len(X)} samples but {len(y)} labels")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"task.path = {str(path)!r}: features contain NaN or infinity")
    if X.ndim not in (2, 3, 4):
        raise ValueError(f"task.path = {str(path)!r}: X has shape {X.shape}; allowed: N x features, N x H x W or N x C x H x W")
    return X, y


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map arbitrary labels to 0..K-1 (sorted order) and return the class names."""
    classes, codes = np.unique(y, return_inverse=True)
    return codes.astype(np.int64), tuple(str(c) for c in classes)


def image_shape_of(X: np.ndarray) -> tuple[int, int, int] | None:
    """``(C, H, W)`` of an image array ``(N, C, H, W)`` or ``(N, H, W)``; None for flat features."""
    if X.ndim == 4:
        _, channels, height, width = X.shape
        return (int(channels), int(height), int(width))
    if X.ndim == 3:
        return (1, int(X.shape[1]), int(X.shape[2]))
    return None


def read_idx(path: str | Path) -> np.ndarray:
    """An array from an idx file (the MNIST distribution format), gzipped or not.

    Layout: two zero bytes, a type code (0x08 unsigned byte ... 0x0E double),
    the number of dimensions, then each dimension as a big-endian uint32,
    then the data in big-endian C order.
    """
    import gzip

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"task: {str(path)!r} is not an idx file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"task: {str(path)!r} has unknown idx type code 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"task: {str(path)!r} holds {len(raw) - header} data bytes, its header promises {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def load_mnist(directory: str | Path, limit: int | None = None) -> dict[str, np.ndarray]:
    """The four MNIST idx files of a folder (plain or ``.gz``): images scaled to [0, 1] as N x 1 x H x W."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"task.dir = {str(directory)!r}: folder does not exist")
    out = {}
    for key, stem in MNIST_FILES.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ValueError(f"task.dir = {str(directory)!r}: missing {stem} (or {stem}.gz)")
        out[key] = read_idx(found)
    for part in ("train", "test"):
        images, labels = out[f"{part}_images"], out[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"task.dir = {str(directory)!r}: {part} images {images.shape} and labels {labels.shape} do not match")
        out[f"{part}_images"] = images[:, None].astype(np.float64) / MNIST_PIXEL_SCALE
    if limit is not None:
        out["train_images"], out["train_labels"] = out["train_images"][:limit], out["train_labels"][:limit]
    return out


def split_with_test(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, val_fraction: float, seed: int) -> Split:
    """A split whose test set is given (e.g. MNIST's official one); validation is carved from the rest."""
    from sklearn.model_selection import train_test_split

    shape = image_shape_of(X)
    classes = np.unique(np.concatenate([y, y_test]))
    codes = np.searchsorted(classes, y)
    test_codes = np.searchsorted(classes, y_test)
    X, X_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    if val_fraction > 0:
        X_train, X_val, y_train, y_val = train_test_split(X, codes, test_size=val_fraction, random_state=seed, stratify=codes)
    else:
        X_train, y_train, X_val, y_val = X, codes, X[:0], codes[:0]
    return Split(X_train, y_train, X_val, y_val, X_test, test_codes, len(classes), tuple(str(c) for c in classes), shape)


def stratified_split(
    X: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int, image_shape: tuple[int, int, int] | None = None
) -> Split:
    """Fixed stratified split into train / validation / test."""
    from sklearn.model_selection import train_test_split

    image_shape = image_shape or image_shape_of(X)
    X = X.reshape(len(X), -1)
    codes, names = encode_labels(y)
    if len(names) < 2:
        raise ValueError("task: the dataset has fewer than 2 classes")
    counts = np.bincount(codes)
    stratify = codes if counts.min() >= 3 else None
    X_rest, X_test, y_rest, y_test = train_test_split(X, codes, test_size=test_fraction, random_state=seed, stratify=stratify)
    if val_fraction > 0:
        rel = val_fraction / (1.0 - test_fraction)
        strat_rest = y_rest if stratify is not None else None
        X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=rel, random_state=seed, stratify=strat_rest)
    else:
        X_train, y_train = X_rest, y_rest
        X_val, y_val = X_rest[:0], y_rest[:0]
    return Split(X_train, y_train, X_val, y_val, X_test, y_test, len(names), names, image_shape)
