"""Serialising users' fitted models: safe by default, pickle only when asked.

Two different needs, two different tools:

* **What we persist** (a saved :class:`~sparklift.grouped.GroupedModel`, a
  saved :class:`~sparklift.inference.ModelTransformer`, the model file of
  ``sparklift predict``) goes through :func:`dumps` / :func:`loads`: a small
  self-describing envelope (magic bytes, a JSON header with the format version
  and the serializer, then the payload). The default serializer is skops,
  whose loader only instantiates types it has been told to trust, so loading a
  file from somewhere else cannot run arbitrary code. ``serializer="pickle"``
  is an explicit opt-in, and loading a pickle payload needs
  ``allow_pickle=True`` again at load time.
* **What we only ship to our own Python workers** inside a Spark job (the model
  a scoring task applies) is cloudpickled, exactly as Spark ships any closure:
  :func:`transport_dumps`. Those bytes never touch a disk.

Which types skops may instantiate is computed, never waved through: the types
skops reports as untrusted are accepted only when they come from a short list
of packages (:data:`TRUSTED_MODULE_PREFIXES`: scikit-learn, NumPy, SciPy) or
are named by the caller in ``trusted``; anything else is refused with the list
of offending types.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from collections.abc import Iterable
from typing import Any

from sparklift.errors import InvalidInputError, ModelFormatError

#: Version of the envelope written by :func:`dumps`.
FORMAT_VERSION = 1
#: Serializers :func:`dumps` accepts.
SERIALIZERS = ("skops", "pickle")
#: Packages whose types skops may instantiate without being named by the caller.
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.")

_MAGIC = b"SPARKLIFT-MODEL\x00"
_HEADER_LEN = struct.Struct(">I")


def _skops() -> Any:
    """skops.io, or a clear error naming the extra that installs it."""
    try:
        import skops.io as sio
    except ModuleNotFoundError as exc:
        if exc.name not in ("skops", "skops.io"):
            raise  # skops is there, but something it needs is not
        raise ImportError(
            "Saving and loading scikit-learn models safely needs skops: "
            "`pip install 'sparklift[skops]'` (or `pip install skops`); or pass "
            "serializer='pickle' (only load such files from sources you trust)."
        ) from None
    return sio


def _check_serializer(serializer: str) -> str:
    if serializer not in SERIALIZERS:
        raise InvalidInputError(
            f"serializer must be one of {list(SERIALIZERS)}; got {serializer!r}"
        )
    return serializer


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in ("sklearn", "skops", "numpy"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:  # pragma: no cover - sklearn/numpy are dependencies
            continue
    return versions


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        # Large NumPy buffers arrive as pickle.PickleBuffer, which has no len().
        with memoryview(data) as view:
            return view.nbytes


def _unimportable(obj: Any) -> list[str]:
    """Functions and classes in ``obj`` that no import can find by name (lambdas, locals).

    A pickling pass that writes nothing visits every object the model holds
    (``reducer_override`` sees each function and class); what cannot be walked
    this way ends the search with what was found.
    """
    import pickle
    import types

    found: list[str] = []

    class Finder(pickle.Pickler):
        def reducer_override(self, o: Any) -> Any:
            if isinstance(o, types.FunctionType | type):
                name = getattr(o, "__qualname__", "")
                if "<lambda>" in name or "<locals>" in name:
                    if f"{o.__module__}.{name}" not in found:
                        found.append(f"{o.__module__}.{name}")
                    return (str, ("",))
            return NotImplemented

    try:
        Finder(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception:
        # An object plain pickle refuses ends the walk (skops may still store
        # it): say so in what is returned, so the caller can look elsewhere.
        found.append(_WALK_ENDED)
    return found


#: Marks a walk that could not visit the whole model.
_WALK_ENDED = "<walk ended>"


def dumps(obj: Any, serializer: str = "skops") -> bytes:
    """Serialise a fitted model for storage.

    Parameters
    ----------
    obj : object
        A fitted model (a scikit-learn estimator or pipeline, or any object
        skops can represent).
    serializer : {"skops", "pickle"}, default "skops"
        ``"pickle"`` is an explicit opt-in for objects skops cannot store;
        loading it later requires ``allow_pickle=True``.

    Returns
    -------
    bytes
        The envelope: magic bytes, a JSON header (format version, serializer,
        library versions) and the payload.

    Raises
    ------
    InvalidInputError
        When the serializer is unknown, or skops cannot represent the object
        (the message suggests ``serializer="pickle"``).
    """
    _check_serializer(serializer)
    if serializer == "skops":
        sio = _skops()

        try:
            payload = sio.dumps(obj)
        except Exception as exc:
            raise InvalidInputError(
                f"skops cannot serialise {type(obj).__name__} ({type(exc).__name__}: {exc}); "
                "pass serializer='pickle' to store it with pickle (only load such files "
                "from sources you trust)"
            ) from None
        # skops stores a function or class by module and bare name: a lambda,
        # or one defined inside a function, would load nowhere, or load another
        # object of the same name. Refuse now, not when someone loads it.
        local = _unimportable(obj)
        if local and local[-1] == _WALK_ENDED:
            local.pop()
            # What skops wrote names any lambda the walk did not reach.
            if b"<lambda>" in payload:
                local += [t for t in sio.get_untrusted_types(data=payload) if "<lambda>" in t]
        if local:
            raise InvalidInputError(
                f"{type(obj).__name__} holds {', '.join(local[:3])}, which skops cannot "
                "store: it stores functions and classes by module and name, and a lambda "
                "or anything defined inside a function cannot be imported by that name "
                "(the file would load nowhere, or load another object of the same name). "
                "Define it with def or class at the top of an importable module, or pass "
                "serializer='pickle' (only load such files from sources you trust)"
            )
    else:
        import pickle

        # cloudpickle (as bundled with pyspark): a model whose class was
        # defined in __main__ or a notebook is stored by value, where plain
        # pickle would store a reference no other process can resolve.
        from pyspark import cloudpickle

        payload = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    header = json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "serializer": serializer,
            "type": f"{type(obj).__module__}.{type(obj).__qualname__}",
            "versions": _library_versions(),
        },
        separators=(",", ":"),
    ).encode()
    return _MAGIC + _HEADER_LEN.pack(len(header)) + header + payload


def read_header(data: bytes) -> tuple[dict[str, Any], memoryview]:
    """The JSON header and the payload of an envelope written by :func:`dumps`.

    Raises
    ------
    ModelFormatError
        When ``data`` is not such an envelope, is truncated, or comes from a
        newer format version.
    """
    view = memoryview(data)
    start = len(_MAGIC) + _HEADER_LEN.size
    if len(view) < start or bytes(view[: len(_MAGIC)]) != _MAGIC:
        raise ModelFormatError(
            "not a sparklift model: the data does not start with sparklift's model header "
            "(write models with sparklift._serialize.dumps or sparklift.inference.save_model)"
        )
    (length,) = _HEADER_LEN.unpack(view[len(_MAGIC) : start])
    try:
        header = json.loads(bytes(view[start : start + length]))
    except ValueError:
        raise ModelFormatError("damaged sparklift model: its header is not valid JSON") from None
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"sparklift model format version {version!r} is not supported by this version "
            f"of sparklift (it reads version {FORMAT_VERSION})"
        )
    _check_serializer_in_file(header.get("serializer"))
    return header, view[start + length :]


def _check_serializer_in_file(serializer: object) -> None:
    if serializer not in SERIALIZERS:
        raise ModelFormatError(f"damaged sparklift model: unknown serializer {serializer!r}")


def untrusted_types(data: bytes, trusted: Iterable[str] = ()) -> list[str]:
    """Types in a skops envelope that neither skops, our allow-list nor ``trusted`` accept.

    Parameters
    ----------
    data : bytes
        An envelope written by :func:`dumps` with ``serializer="skops"``.
    trusted : iterable of str
        Fully qualified type names the caller vouches for.

    Returns
    -------
    list of str
        Empty when the payload may be loaded.
    """
    sio = _skops()

    _, payload = read_header(data)
    extra = set(trusted)
    try:
        reported = sio.get_untrusted_types(data=bytes(payload))
    except Exception as exc:
        raise ModelFormatError(f"damaged sparklift model: skops cannot read it ({exc})") from None
    return [
        name
        for name in reported
        if name not in extra and not name.startswith(TRUSTED_MODULE_PREFIXES)
    ]


def loads(data: bytes, *, trusted: Iterable[str] = (), allow_pickle: bool = False) -> Any:
    """Load a model written by :func:`dumps`.

    Parameters
    ----------
    data : bytes
        The envelope.
    trusted : iterable of str, optional
        Extra fully qualified type names skops may instantiate (types from
        scikit-learn, NumPy and SciPy are accepted without being named).
    allow_pickle : bool, default False
        Must be True to load a payload written with ``serializer="pickle"``:
        unpickling runs arbitrary code, so only do it for files you trust.

    Returns
    -------
    object
        The model.

    Raises
    ------
    ModelFormatError
        Damaged data, an unknown format version, a pickle payload without
        ``allow_pickle=True``, or types nobody vouched for.
    """
    header, payload = read_header(data)
    if header["serializer"] == "pickle":
        if not allow_pickle:
            raise ModelFormatError(
                "this model was stored with pickle, which can run arbitrary code when loaded; "
                "pass allow_pickle=True (or --allow-pickle) only if you trust its source"
            )
        import pickle

        try:
            return pickle.loads(payload)
        except Exception as exc:
            raise ModelFormatError(f"damaged pickled model ({type(exc).__name__}: {exc})") from None
    sio = _skops()

    trusted = list(trusted)
    refused = untrusted_types(data, trusted)
    if refused:
        raise ModelFormatError(
            f"the model contains types that are not trusted: {refused}; if you trust this "
            "file, pass them as trusted=[...] (or --trust on the command line)"
        )
    raw = bytes(payload)
    try:
        return sio.loads(raw, trusted=sio.get_untrusted_types(data=raw))
    except (ImportError, AttributeError) as exc:
        raise ModelFormatError(
            f"the model needs a type this process cannot import ({type(exc).__name__}: {exc}). "
            f"It was saved as {header.get('type')!r} with {header.get('versions')}. Either a "
            "class it uses was defined in a script's __main__ or a notebook, which exists "
            "only there (move it into an importable module installed where the model is "
            "loaded, and save the model again), or this environment's libraries differ from "
            "those it was saved with (install the versions above)"
        ) from None
    except Exception as exc:
        raise ModelFormatError(f"damaged sparklift model ({type(exc).__name__}: {exc})") from None


def save(obj: Any, path: str, serializer: str = "skops") -> None:
    """Write :func:`dumps` of ``obj`` to a local file."""
    data = dumps(obj, serializer)
    with open(path, "wb") as fh:
        fh.write(data)


def load(path: str, *, trusted: Iterable[str] = (), allow_pickle: bool = False) -> Any:
    """Read a local file written by :func:`save` (see :func:`loads`)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return loads(data, trusted=trusted, allow_pickle=allow_pickle)


def driver_paths() -> tuple[str, ...]:
    """The user's folders on this process's import path, to ship to the workers.

    A notebook or script often imports modules from its own folder (``""`` on
    ``sys.path``) or from a folder it added with ``sys.path.append``; Python
    workers start without those. Python's own folders (the standard library,
    site-packages, anything under the interpreter's prefixes) are left out, so
    that a worker never borrows the driver's installed packages, and so are
    world-writable folders such as ``/tmp``, where anyone could plant a module.
    See :func:`using_driver_paths`.
    """
    import os
    import site
    import stat
    import sys

    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    try:
        prefixes.update(site.getsitepackages())
        prefixes.add(site.getusersitepackages())
    except AttributeError:  # pragma: no cover - some embedded interpreters lack them
        pass
    roots = [os.path.abspath(p) for p in prefixes if p]
    out = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.curdir)
        if any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
            continue
        try:
            if os.stat(path).st_mode & stat.S_IWOTH:
                continue
        except OSError:  # gone, or a zip file's inner path: nothing a worker could use
            continue
        out.append(path)
    return tuple(dict.fromkeys(out))


def using_driver_paths(paths: Iterable[str], load: Any) -> Any:
    """``load()``; if a module is missing, once more with the driver's import path.

    The driver's folders that exist here and are not on this worker's
    ``sys.path`` are appended (after the worker's own, so they shadow
    nothing). On a cluster they usually do not exist on the executors and
    the original error stands.
    """
    try:
        return load()
    except ModuleNotFoundError:
        import importlib
        import os
        import sys

        extra = [p for p in paths if p not in sys.path and os.path.isdir(p)]
        if not extra:
            raise
        sys.path.extend(extra)
        importlib.invalidate_caches()
        return load()


_PATHS_HEADER = struct.Struct("<I")


def transport_dumps(obj: Any) -> tuple[bytes, str]:
    """Bytes to ship an object to this job's Python workers, and their hash.

    cloudpickle (as Spark ships closures), so models whose classes live in a
    notebook or ``__main__`` travel too, preceded by the driver's import path
    (see :func:`using_driver_paths`). Never written to disk.
    """
    import pickle

    from pyspark import cloudpickle

    head = pickle.dumps(driver_paths(), protocol=pickle.HIGHEST_PROTOCOL)
    buffer = io.BytesIO()
    buffer.write(_PATHS_HEADER.pack(len(head)))
    buffer.write(head)
    cloudpickle.dump(obj, buffer)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def transport_loads(data: bytes) -> Any:
    """Inverse of :func:`transport_dumps` (runs on our own workers)."""
    import pickle

    view = memoryview(data)
    (n,) = _PATHS_HEADER.unpack_from(view)
    start = _PATHS_HEADER.size
    paths = pickle.loads(view[start : start + n])
    return using_driver_paths(paths, lambda: pickle.loads(view[start + n :]))
