"""Rival stores: each module has ``label`` and ``open_store(folder, records)``.

``open_store`` loads ``records`` the fastest way the rival allows and returns
``(get, set, close)``; ``set`` is the rival's normal durable write, ``get``
returns the value decoded into its class. A module with ``fsync = True``
fsyncs every write: the scenarios put it beside persist's ``set_fsync`` only.
"""
