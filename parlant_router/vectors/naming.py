"""Names of what a vector database kept on a store's backend creates there (imports nothing:
the config layer names these tables in `routes` and its collision check)."""

from __future__ import annotations

VECTOR_ROWS_PREFIX = "vectors_"
"""Prefix of the document collection holding a vector collection's rows (`vectors_glossary`:
`PARLANT_GLOSSARY_VECTORS_GLOSSARY` on Snowflake)."""

VECTOR_METADATA_COLLECTION = "vector_metadata"
"""The collection of a store's vector database metadata (Parlant's vector-store versions)."""
