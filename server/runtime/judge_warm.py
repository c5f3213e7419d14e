"""Imported once, by the judge pool's fork server: warms math-verify there, so that every judge
worker forked from it starts with the parser's caches already built (otherwise each worker,
including each one replaced after a kill, spends about a quarter of a second building them).

The fork server can only import modules (``multiprocessing.set_forkserver_preload``), so the
warm-up is this module's import; only ``server.api.app`` names it, as a module to preload.
"""

from decoding.symbolic import warm_up

warm_up()
