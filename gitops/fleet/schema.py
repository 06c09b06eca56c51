"""JSON Schema (draft 2020-12) of the fleet documents, for editors and CI.

Part of the model layer: derived from ``gitops.fleet.spec`` so that it can never disagree with
the loader. yaml-language-server uses it through a modeline at the top of each file.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from gitops.fleet.spec import ClusterDocument, FleetDocument

SCHEMA_ID = "https://gitops.dev/schemas/fleet.gitops.io/v1alpha1.json"

_Document = TypeAdapter(Annotated[FleetDocument | ClusterDocument, Field(discriminator="kind")])


def json_schema() -> dict[str, Any]:
    """The schema of one fleet document: a Fleet or a Cluster, told apart by ``kind``."""
    schema = _Document.json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "fleet.gitops.io/v1alpha1 document",
        "description": "A Fleet or Cluster document of a gitops fleet repository.",
        **schema,
    }
