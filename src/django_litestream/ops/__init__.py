"""The commands that operate a deployment, beside ``serve``: one module per command.

``passthrough`` (every Litestream command, with the generated configuration and the guard
before ``replicate``), ``showconfig`` (``config``), ``status``, ``verify`` (with
``digest``), ``pointintime`` (``restore -timestamp``), and ``health`` (the health
endpoint's verdict; ``views.py`` is its Django side). Each command is
``run(settings, args, write) -> exit status``; ``invocation`` prepares what they share.
No Django here.
"""
