"""``manage.py litestream serve``: run the web server under Litestream and lose nothing.

Three processes, each with one job:

* ``command`` (Django side) validates settings, writes a private plan and config, then
  ``exec``\\ s the supervisor, so nothing of the user's project stays in memory;
* ``supervisor`` (no Django) takes the per-database locks, restores missing databases,
  runs ``litestream replicate -exec gate``, owns every signal and deadline, and exits with
  the server's own status;
* ``gate`` (the -exec child) waits until Litestream is ready, runs the pre-serve commands,
  starts the server in its own process group, and records how it ended.
"""
