"""parlant.yaml: its models, how it is loaded (layers, positions, interpolation), and routes.

Data flows one way: `loading` reads the file into a validated `models.ParlantConfig`, and
`routes` resolves it into one `ResolvedRoute` per store with every naming default applied.
Nothing here imports Parlant: `parlant-router routes` and `schema` stay fast.
"""
