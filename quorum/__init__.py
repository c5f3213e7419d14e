"""Quorum's user-facing entry points: the ``quorum`` command (``quorum.cli``).

The server is ``server``, the evaluation harness ``evaluation``, model building ``modelprep``
and the pure decoding logic ``decoding``; this package only ties them to one command.
"""
