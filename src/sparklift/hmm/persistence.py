"""Saving and loading hidden Markov models: JSON + NPZ, a format version, no pickle.

A saved model is a directory::

    path/
      sparklift.json        what the model is: format name and version, class,
                            emission family and its hyperparameters, the
                            estimator's Params, the convergence monitor, and
                            the name, dtype and shape of every array
      arrays.npz            the fitted parameters (``startprob``, ``transmat``,
                            ``emissionprob`` / ``means`` / ``covars`` / ...),
                            read back with ``allow_pickle=False``
      metadata/part-00000   one line of pyspark.ml-style metadata, so that a
                            classic pyspark ``PipelineModel.load`` finds the
                            class to load this stage with

Files are written by the driver through :mod:`pyarrow.fs`, so local paths,
``file://`` and the object stores and HDFS that pyarrow supports all work,
and the same code runs on Spark Classic and Spark Connect (no SparkContext,
no JVM writer). Models are small (kilobytes), so going through the driver
costs nothing.

The same primitives write EM checkpoints (:func:`write_checkpoint`,
:func:`read_checkpoint`), with an atomic rename so that a fit killed while
writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import zipfile
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from sparklift.errors import ModelFormatError, PathExistsError

#: Identifies a sparklift HMM directory.
FORMAT_NAME = "sparklift.hmm"
#: Bumped when the layout changes in a way older readers cannot read.
FORMAT_VERSION = 1
METADATA_FILE = "sparklift.json"
ARRAYS_FILE = "arrays.npz"
_PYSPARK_METADATA = "metadata/part-00000"


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and in-filesystem path of ``path``.

    Plain paths, ``file:`` URIs (``file:/tmp/x``, ``file:///tmp/x``) and Windows
    drive letters are local; any other scheme goes to pyarrow's ``from_uri``.
    """
    from urllib.parse import unquote, urlparse

    parsed = urlparse(path)
    scheme = parsed.scheme.lower()
    if len(scheme) <= 1:  # no scheme, or a Windows drive letter
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"Cannot open {path!r}: file URIs must name a local path")
        return pafs.LocalFileSystem(), os.path.abspath(unquote(parsed.path))
    try:
        return pafs.FileSystem.from_uri(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for unknown schemes
        raise ValueError(f"Cannot open {path!r} for saving or loading a model: {exc}") from None


def _delete(fs: pafs.FileSystem, path: str) -> None:
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif _exists(fs, path):
        fs.delete_file(path)


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def _write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    with fs.open_output_stream(path) as out:
        out.write(data)


def _read_bytes(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as src:
        return src.read()


def to_json_value(value: Any) -> Any:
    """A JSON-encodable copy of ``value`` (numpy arrays and scalars become lists and numbers)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value


def _encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _decode_arrays(data: bytes, where: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFormatError(f"{where} is damaged and cannot be read: {exc}") from None


def _array_manifest(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        k: {"dtype": str(np.asarray(v).dtype), "shape": list(np.shape(v))}
        for k, v in arrays.items()
    }


def save_model(
    path: str,
    metadata: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    overwrite: bool = False,
) -> None:
    """Write a model directory.

    Parameters
    ----------
    path : str
        Directory to create (local path or a URI pyarrow understands).
    metadata : dict
        JSON-encodable description; must contain ``"class"`` (the fully
        qualified Python class name of the model). ``format`` and
        ``format_version`` are added.
    arrays : dict of str to ndarray
        Numeric arrays (no object dtype).
    overwrite : bool, default False
        Replace an existing directory instead of refusing.

    Raises
    ------
    PathExistsError
        When ``path`` exists and ``overwrite`` is False (a ``FileExistsError``).
    """
    fs, root = _filesystem(path)
    if _exists(fs, root) and not overwrite:
        raise PathExistsError(
            f"Path {path} already exists. To overwrite it, use "
            "model.write().overwrite().save(path)."
        )
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {name!r} has object dtype and cannot be saved without pickle")
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **to_json_value(metadata),
        "arrays": _array_manifest(arrays),
    }
    # Write a temporary sibling, then swap it in: an existing model is replaced only
    # once the new one is complete (a failed save leaves the old one in place).
    import uuid

    final_root = root
    root = f"{final_root.rstrip('/')}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        _write_model_files(fs, root, document, arrays, metadata)
        if _exists(fs, final_root):
            old = f"{final_root.rstrip('/')}.old-{uuid.uuid4().hex[:12]}"
            fs.move(final_root, old)
            fs.move(root, final_root)
            _delete(fs, old)
        else:
            fs.move(root, final_root)
    except BaseException:
        _delete(fs, root)
        raise


def _write_model_files(
    fs: pafs.FileSystem,
    root: str,
    document: dict[str, Any],
    arrays: dict[str, np.ndarray],
    metadata: dict[str, Any],
) -> None:
    fs.create_dir(posixpath.join(root, "metadata"), recursive=True)
    _write_bytes(fs, posixpath.join(root, ARRAYS_FILE), _encode_arrays(arrays))
    _write_bytes(
        fs,
        posixpath.join(root, METADATA_FILE),
        json.dumps(document, indent=1, sort_keys=True, allow_nan=True).encode(),
    )
    # pyspark.ml's DefaultParamsReader reads "class" from this file to find the
    # stage's Python class; the stage's own load() then reads sparklift.json.
    pyspark_meta = {
        "class": metadata["class"],
        "sparkVersion": metadata.get("spark_version", ""),
        "uid": metadata.get("uid", ""),
        "paramMap": {},
        "defaultParamMap": {},
        "timestamp": 0,
        "language": "Python",
    }
    _write_bytes(fs, posixpath.join(root, _PYSPARK_METADATA), json.dumps(pyspark_meta).encode())


def _check_document(document: Any, where: str) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{where} is not a sparklift hidden Markov model file.")
    version = document.get("format_version")
    if not isinstance(version, int):
        raise ModelFormatError(f"{where} has no valid format_version; the file is damaged.")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{where} was written in format version {version} by a newer sparklift; "
            f"this version reads format versions up to {FORMAT_VERSION}. Upgrade sparklift."
        )
    if version < 1:
        raise ModelFormatError(f"{where} has an unknown format_version {version}.")
    return document


def _read_json(fs: pafs.FileSystem, path: str, where: str) -> Any:
    try:
        return json.loads(_read_bytes(fs, path).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{where} is damaged (invalid JSON: {exc}).") from None


def load_model(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a model directory written by :func:`save_model`.

    Returns
    -------
    metadata : dict
        The JSON document.
    arrays : dict of str to ndarray
        The arrays, checked against the manifest in the metadata.

    Raises
    ------
    ModelFormatError
        The directory is missing files, damaged, or from a newer format.
    """
    fs, root = _filesystem(path)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise ModelFormatError(f"No saved model at {path}: the path does not exist.")
    meta_path = posixpath.join(root, METADATA_FILE)
    if info.type != pafs.FileType.Directory or not _exists(fs, meta_path):
        raise ModelFormatError(
            f"{path} is not a sparklift model directory (no {METADATA_FILE} in it)."
        )
    where = f"Model file {meta_path}"
    document = _check_document(_read_json(fs, meta_path, where), where)
    arrays_path = posixpath.join(root, ARRAYS_FILE)
    if not _exists(fs, arrays_path):
        raise ModelFormatError(f"Model directory {path} is incomplete: {ARRAYS_FILE} is missing.")
    arrays = _decode_arrays(_read_bytes(fs, arrays_path), f"Model file {arrays_path}")
    _check_manifest(document.get("arrays"), arrays, f"Model directory {path}")
    return document, arrays


def _check_manifest(manifest: Any, arrays: dict[str, np.ndarray], where: str) -> None:
    if not isinstance(manifest, dict):
        raise ModelFormatError(f"{where} is damaged: its array manifest is missing.")
    for name, spec in manifest.items():
        if name not in arrays:
            raise ModelFormatError(f"{where} is damaged: array {name!r} is missing.")
        if list(arrays[name].shape) != list(spec.get("shape", [])):
            raise ModelFormatError(
                f"{where} is damaged: array {name!r} has shape {list(arrays[name].shape)}, "
                f"expected {spec.get('shape')}."
            )


# --------------------------------------------------------------------------- checkpoints

CHECKPOINT_FILE = "checkpoint.json"


def write_checkpoint(
    directory: str, state: dict[str, Any], arrays: dict[str, np.ndarray], tag: str
) -> None:
    """Atomically replace the checkpoint in ``directory``.

    The arrays go to a new file named after ``tag`` first; the JSON that
    points at it is then renamed into place, so a fit killed at any moment
    leaves either the old or the new checkpoint, both complete.
    """
    fs, root = _filesystem(directory)
    fs.create_dir(root, recursive=True)
    arrays_name = f"params-{tag}.npz"
    _write_bytes(fs, posixpath.join(root, arrays_name), _encode_arrays(arrays))
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "checkpoint",
        **to_json_value(state),
        "arrays_file": arrays_name,
        "arrays": _array_manifest(arrays),
    }
    tmp = posixpath.join(root, CHECKPOINT_FILE + ".tmp")
    _write_bytes(fs, tmp, json.dumps(document, sort_keys=True, allow_nan=True).encode())
    fs.move(tmp, posixpath.join(root, CHECKPOINT_FILE))
    for entry in fs.get_file_info(pafs.FileSelector(root)):
        if entry.base_name.startswith("params-") and entry.base_name != arrays_name:
            fs.delete_file(entry.path)


def read_checkpoint(directory: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The checkpoint in ``directory``, or None when there is none yet."""
    fs, root = _filesystem(directory)
    path = posixpath.join(root, CHECKPOINT_FILE)
    if not _exists(fs, path):
        return None
    where = f"Checkpoint {path}"
    document = _check_document(_read_json(fs, path, where), where)
    arrays_path = posixpath.join(root, str(document.get("arrays_file")))
    if not _exists(fs, arrays_path):
        raise ModelFormatError(f"{where} is damaged: {arrays_path} is missing.")
    arrays = _decode_arrays(_read_bytes(fs, arrays_path), f"Checkpoint file {arrays_path}")
    _check_manifest(document.get("arrays"), arrays, where)
    return document, arrays
