"""Moving stores' data: `parlant-router copy`, `export` and `import`.

`endpoints` says what each side offers; `json_file`, `export_directory` and
`snowflake_endpoint` are the sides; `copier` moves one store (safely, resumably,
verified by `digest`); `merging` decides `--merge`; `commands` picks the stores and sides.
"""
