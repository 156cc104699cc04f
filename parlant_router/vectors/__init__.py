"""Vector collections kept in a store's own document database and searched in process.

`StoredVectorDatabase` is the vector database of `vector: snowflake` (embeddings stored
with the rows) and of `vector: transient` over a durable backend (rows stored, embedded
again at each start). `rows` is the stored layout, `similarity` the scoring, `collection`
one collection's reads, writes and replication.
"""

from parlant_router.vectors.database import StoredVectorDatabase

__all__ = ["StoredVectorDatabase"]
