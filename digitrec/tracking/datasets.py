"""What a run read, as MLflow dataset inputs (the Datasets column of the runs table): metadata
only, never the arrays. A datamodule's `describe_datasets()` (digitrec.datamodules.base.
DatasetInfo) gives each set's name, context, source and generator config; here they become
MLflow datasets whose source type is `digitrec`, with a digest of the source's files and config,
a tensor schema and a profile (size and config)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import register_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.schema import TensorDatasetSchema
from mlflow.entities import DatasetInput, InputTag
from mlflow.types import Schema, TensorSpec
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

SOURCE_TYPE = "digitrec"


class DigitrecSource(DatasetSource):
    """Where a digitrec set comes from, as a JSON object: uri, kind, files and their md5s, split,
    caches (whatever the datamodule says)."""

    def __init__(self, spec: dict[str, Any]):
        self._spec = dict(spec)

    @staticmethod
    def _get_source_type() -> str:
        return SOURCE_TYPE

    def load(self) -> str | None:
        """The source's location (a file:// URI); the data is read by digitrec, not MLflow."""
        return self._spec.get("uri")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> DigitrecSource:
        raise NotImplementedError("digitrec sources are made by digitrec's datamodules")

    def to_dict(self) -> dict[str, Any]:
        return dict(self._spec)

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> DigitrecSource:
        return cls(source_dict)


register_dataset_source(DigitrecSource)  # mlflow.data.get_source(input) gives one back


class DescribedDataset(MetaDataset):
    """A metadata-only dataset with a tensor schema and a profile."""

    def __init__(
        self,
        source: DatasetSource,
        name: str,
        digest: str,
        schema: TensorDatasetSchema | None,
        profile: dict,
    ):
        self._profile = profile
        super().__init__(source, name=name, digest=digest)
        self._schema = schema

    @property
    def profile(self) -> dict:
        return self._profile

    def to_dict(self) -> dict[str, str]:
        config = super().to_dict()
        config["schema"] = json.dumps(self.schema.to_dict()) if self.schema else None
        config["profile"] = json.dumps(self._profile, default=str)
        return config


def _schema(arrays: dict) -> TensorDatasetSchema | None:
    """name → (dtype, shape): the image as the features, the labels as the targets."""
    if not arrays:
        return None
    specs = {
        k: TensorSpec(np.dtype(dtype), tuple(shape), k) for k, (dtype, shape) in arrays.items()
    }
    features = [s for k, s in specs.items() if k == "image"] or list(specs.values())[:1]
    targets = [s for s in specs.values() if s not in features]
    return TensorDatasetSchema(Schema(features), Schema(targets) if targets else None)


def dataset_input(info) -> DatasetInput:
    """A DatasetInfo as the DatasetInput MlflowClient.log_inputs takes (context as its tag)."""
    source = json.loads(json.dumps(info.source, default=str))  # plain JSON types
    profile = {"size": info.size, "config": info.config}
    dataset = DescribedDataset(
        DigitrecSource(source), info.name, info.digest, _schema(info.schema), profile
    )
    return DatasetInput(
        dataset._to_mlflow_entity(), [InputTag(MLFLOW_DATASET_CONTEXT, info.context)]
    )
