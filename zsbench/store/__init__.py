"""Result rows once computed: their one schema, where they are kept, and what is read from them.

- ``rows``: the schema every row is checked against on every route in.
- ``sqlite``: the results database (one row per run and calibrator, with provenance).
- ``export``: rows as the JSON lines committed under ``docs/leaderboard/results``.
- ``results``: rows as data for people (records, pandas, Arrow, HTML).
- ``summary``, ``comparisons``, ``tolerance``: means and intervals over seeds, who beats whom and
  how sure, and how far a row may move on another machine.
"""
