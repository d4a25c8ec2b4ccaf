"""pyspark.ml glue shared by sparklift's stages."""

from __future__ import annotations

from typing import Any

from pyspark.ml.util import MLWriter


class InstanceWriter(MLWriter):
    """An ``MLWriter`` for one stage whose ``saveImpl`` does all the writing.

    ``MLWriter.save`` checks and clears an existing path through a JVM helper
    that Spark Connect does not offer; here ``save`` goes straight to
    ``saveImpl``, which honours ``shouldOverwrite`` with writers that work on
    Classic and Connect alike.
    """

    def __init__(self, instance: Any) -> None:
        super().__init__()
        self.instance = instance

    def save(self, path: str) -> None:
        from sparklift._spark import refusing_existing

        with refusing_existing(path, "use .write().overwrite().save(path)"):
            self.saveImpl(path)
