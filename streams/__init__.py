"""The stream worker: joins the CryptoCompare ranking with CoinMarketCap prices (Faust).

``topcoins.streams.app.build_worker(settings)`` builds the app and
``topcoins.streams.main.run_worker(settings)`` runs the worker process;
``topcoins.streams.replay`` is the ``topcoins replay`` command. The join itself, its alias
table and the replay fold are pure and live in ``topcoins.domain``; the reader of the raw
topics (``GET /?at=``, ``topcoins replay``) is ``topcoins.history``.
"""
