"""The setting, turned into Litestream's configuration, and everything known about it.

``types`` (the validated setting, a finding, a built configuration), ``build`` (setting ->
configuration), ``keys`` (what Litestream 0.5.17 reads), ``envref`` (``$NAME``
references), ``secrets`` (how credentials travel and are blanked), ``durations``,
``locations`` (where a replica lives), ``findings``/``values``/``verdict``/``translate``
(every finding, the binary's own verdict among them), ``generate`` (build and report, for
every command) and ``effective`` (the configuration as Litestream will read it). No Django
here: ``django_litestream.conf`` reads the settings and hands a ``Settings`` over.
"""
