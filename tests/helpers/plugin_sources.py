"""Source text of small plugin modules that tests write to files and load by path."""

from __future__ import annotations

import textwrap


def strategy_source(name: str, cost_scale: str, description: str = "") -> str:
    """A strategy plugin module named ``name`` whose ``minidl_cost_scale`` returns the
    Python expression ``cost_scale`` (of ``count``).

    >>> "1.0 / count" in strategy_source("mean", "1.0 / count")
    True
    """
    return textwrap.dedent(f'''
        import minidl as mdl

        @mdl.hookimpl
        def minidl_strategy_info():
            return mdl.StrategyInfo(name={name!r}, description={description!r})

        @mdl.hookimpl
        def minidl_cost_scale(count):
            return {cost_scale}
    ''')
