"""Vector indexes: schema, filter DSL, and the RediSearch and Vector Sets backends behind one interface."""

from sluice.vectors.filters import Num, Tag, Text
from sluice.vectors.schema import IndexSchema, MetadataField, VectorField

__all__ = ["IndexSchema", "MetadataField", "Num", "Tag", "Text", "VectorField"]
