"""The options each built-in dataset takes, as one pydantic model per dataset.

``data.options`` in a config and the keyword arguments of ``load_builtin`` are checked
here, so a wrong value names the option (``n: Input should be a valid integer``) instead
of failing deep inside numpy. Types are strict: ``n: '400'``, ``n: true`` and
``seed: 1.5`` are refused, not coerced.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from minidl.errors import DataError

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Seed = Annotated[int, Strict(), Field(ge=0, lt=2**63, description="random seed")]
# Far past any toy dataset; the memory check refuses what does not fit long before.
MAX_EXAMPLES = 10**12
Noise = Annotated[float, Strict(), Field(ge=0.0, le=1e6, allow_inf_nan=False,
                                         description="standard deviation of the noise")]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanarOptions(_Options):
    n: Int = Field(400, ge=2, le=MAX_EXAMPLES, description="examples")
    seed: Seed = 1


class SpiralsOptions(_Options):
    n: Int = Field(300, ge=2, le=MAX_EXAMPLES, description="examples")
    classes: Int = Field(3, ge=2, le=10_000, description="arms, one per class")
    noise: Noise = 0.2
    seed: Seed = 0


class MoonsOptions(_Options):
    n: Int = Field(400, ge=2, le=MAX_EXAMPLES, description="examples")
    noise: Noise = 0.1
    seed: Seed = 0


class XorOptions(_Options):
    n: Int = Field(400, ge=4, le=MAX_EXAMPLES, description="examples")
    noise: Noise = 0.1
    seed: Seed = 0


class DigitsOptions(_Options):
    seed: Seed = 0


OPTIONS: dict[str, type[_Options]] = {
    "planar": PlanarOptions, "spirals": SpiralsOptions, "moons": MoonsOptions,
    "xor": XorOptions, "digits": DigitsOptions,
}


def validate_options(dataset: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against ``dataset``'s model; only the options given are returned.

    >>> validate_options("moons", {"n": 100})
    {'n': 100}
    >>> validate_options("moons", {"n": "100"})
    Traceback (most recent call last):
    ...
    minidl.errors.DataError: n: Input should be a valid integer (got '100')
    """
    model = OPTIONS[dataset]
    # numpy scalars (np.int64(3)) from API callers count as the Python numbers they hold.
    options = {key: value.item() if isinstance(value, np.generic) else value
               for key, value in options.items()}
    try:
        checked = model.model_validate(options)
    except ValidationError as err:
        raise DataError("; ".join(_describe(model, problem) for problem in err.errors())
                        ) from None
    return checked.model_dump(include=set(options))


def _describe(model: type[_Options], problem: Any) -> str:
    name = ".".join(str(part) for part in problem["loc"]) or "options"
    if problem["type"] == "extra_forbidden":
        return f"{name}: unknown option; accepted options: {', '.join(model.model_fields)}"
    given = repr(problem.get("input"))
    given = given if len(given) <= 60 else given[:60] + "..."
    return f"{name}: {problem['msg']} (got {given})"
