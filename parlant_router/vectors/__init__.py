"""Vector collections kept in a store's own document database and searched in process.

`database.StoredVectorDatabase` is the vector database of `vector: snowflake` (embeddings stored
with the rows) and of `vector: transient` over a durable backend (rows stored, embedded
again at each start). `rows` is the stored layout, `similarity` the scoring, `collection`
one collection's reads, writes and replication, `naming` the
collections it creates (without importing Parlant: the config layer names them).
"""
