"""``manage.py litestream serve``: run the web server under Litestream and lose nothing.

Two processes of serve's own, each with one job:

* ``command`` (Django side) validates settings, writes a private plan and config, then
  ``exec``\\ s the supervisor, so nothing of the user's project stays in memory;
* ``supervisor`` (no Django) takes the per-database locks, restores missing databases,
  holds each database (``readhold``) while it starts ``litestream replicate -exec
  <sleeper>`` and the server (in its own process group), owns every signal and deadline,
  and exits with the server's own status once the final sync is confirmed. The sleeper
  (``sleeper``), Litestream's -exec child, only exits when the supervisor says so.
"""
