"""The generated documentation site: rows -> page model -> Markdown pages and PNG figures.

- ``leaderboard``: writes every page and figure of ``docs/leaderboard`` from stored rows.
- ``model``: which rows make which page, under which file name.
- ``pages`` and ``methods``: the Markdown of data set, index, ranking and per-method pages.
- ``markdown``: user text made inert, tables, safe file names.
- ``plots``: the figures.
- ``optiondocs``: option tables generated from the components' schemas.
"""
