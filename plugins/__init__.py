"""minidl's built-in normalization strategies, installed as ``minidl.plugins``.

Each module is a plain plugin of ``@hookimpl`` functions, loaded by the same
``import_plugin`` path a third-party plugin goes through.
"""
