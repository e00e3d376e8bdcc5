"""The Litestream program: finding it, downloading it, running it, and reading what it says.

``binary`` finds the executable (and asks it ``version``), ``download`` installs the pinned
release when it is missing, ``subcommands`` knows its commands and builds their argument
lists, ``process`` runs it (private directories, bounded runs, signals forwarded once), and
``probe`` reads a running Litestream's control socket. No Django here,
and nothing of the package above this folder.
"""
