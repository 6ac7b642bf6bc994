"""LightningDataModules over the numpy datasets in digitrec.data: one module per datamodule
(sequences: synthetic numbers from a glyph pool; svhn: SVHN crops; scenes: the localizer's
scenes), what they share in base. The names are re-exported here, where the configs'
`_target_`s (conf/data/*.yaml) point."""

from digitrec.datamodules.base import (
    BatchDataModule,
    SeededStream,
    WholeBatches,
    _BatchDataModule,
    held_out,
)
from digitrec.datamodules.scenes import FixedScenes, SceneDataModule, SceneStream
from digitrec.datamodules.sequences import (
    GLYPH_SOURCES,
    Albumentations,
    FixedBatches,
    SequenceDataModule,
    SequenceStream,
)
from digitrec.datamodules.street_photos import StreetPhotoDataModule
from digitrec.datamodules.svhn import CroppedStream, ImageBatches, SVHNDataModule, crop_batch

__all__ = [
    "GLYPH_SOURCES",
    "Albumentations",
    "BatchDataModule",
    "CroppedStream",
    "FixedBatches",
    "FixedScenes",
    "ImageBatches",
    "SVHNDataModule",
    "SceneDataModule",
    "StreetPhotoDataModule",
    "SceneStream",
    "SeededStream",
    "SequenceDataModule",
    "SequenceStream",
    "WholeBatches",
    "_BatchDataModule",
    "crop_batch",
    "held_out",
]
