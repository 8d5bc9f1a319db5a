"""The exercise verifier: run a student's answer on fixed inputs and say what is wrong.

A chapter module (``ch00``, ``ch01``, ...) lists its fixed inputs as ``Case`` objects and writes
a *judge*: a function that looks at one result and returns a sentence describing what is wrong
with it (or None). Judges describe the problem in terms of the input ("3 mask pixels lie
outside your box"), never by quoting the expected answer, so an exercise cannot be passed by
copying its message.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np


class ExerciseError(AssertionError):
    """A student's answer is wrong; the message says what is wrong, never the expected answer."""


@dataclass(frozen=True)
class Case:
    """One fixed input: a ``label`` a student can picture, the call's ``args``, and, when the
    right behaviour is to refuse the input, the exception type the answer must ``raises``."""

    label: str
    args: tuple
    raises: type[Exception] | None = None


Judge = Callable[[Any, Case], "str | None"]


def run_exercise(exercise: str, fn: Any, cases: Sequence[Case], judge: Judge) -> bool:
    """Call ``fn(*case.args)`` for every case and let ``judge(result, case)`` inspect the result.

    Returns True (after printing "✓ ... passed") when every case is right; otherwise raises
    ``ExerciseError`` naming the first failing case and what is wrong with the answer. The
    function gets copies of the inputs, and changing them counts as wrong.
    """
    __tracebackhide__ = True  # IPython and pytest then show the student's frames, not ours
    if not callable(fn):
        fail(exercise, f"expected a function, got {describe(fn)}")
    for case in cases:
        args = copy.deepcopy(case.args)
        try:
            result = fn(*args)
        except NotImplementedError:
            fail(exercise, "your function is not written yet (it raises NotImplementedError)")
        except Exception as error:
            if case.raises is not None and isinstance(error, case.raises):
                continue
            fail(exercise, f"on {case.label}, your function raised {type(error).__name__}: {error}", error)
        if case.raises is not None:
            fail(
                exercise,
                f"on {case.label}, your function returned {describe(result)}; "
                f"it should raise {case.raises.__name__} instead",
            )
        if not _same(args, case.args):
            fail(exercise, f"on {case.label}, your function changed its input; work on a copy")
        problem = judge(result, case)
        if problem:
            fail(exercise, f"on {case.label}: {problem}")
    return passed(exercise, f"{len(cases)} cases")


def run_value_exercise(exercise: str, value: Any, judge: Callable[[Any], str | None]) -> bool:
    """Return True (printing "✓ ... passed") if ``judge(value)`` finds nothing wrong with
    ``value``; otherwise raise ``ExerciseError`` with the judge's description."""
    __tracebackhide__ = True
    problem = judge(value)
    if problem:
        fail(exercise, problem)
    return passed(exercise)


def passed(exercise: str, detail: str = "") -> bool:
    """Print the success line for ``exercise`` (with an optional ``detail``) and return True."""
    print(f"✓ {exercise} passed" + (f" ({detail})" if detail else ""))
    return True


def fail(exercise: str, message: str, cause: BaseException | None = None) -> NoReturn:
    """Raise ``ExerciseError`` for ``exercise`` with ``message``; the traceback shows ``cause``
    (an exception the student's code raised) and nothing else that was being handled."""
    __tracebackhide__ = True
    raise ExerciseError(f"{exercise}: {message}") from cause


def describe(value: Any, limit: int = 60) -> str:
    """Return a short description of a student's value: arrays by shape and dtype, others by repr."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    text = repr(value)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b)
        )
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b
