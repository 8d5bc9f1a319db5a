"""Exercises of the course notebooks, one module per chapter (``ch00``, ``ch01``, ...).

A check tests a student's function or value on fixed inputs: it prints "✓ ... passed" and
returns True, or raises ``ExerciseError`` saying what is wrong (never what the answer is).
"""

from tryon_lab.course.exercises.core import Case, ExerciseError, check_function, check_value

__all__ = ["Case", "ExerciseError", "check_function", "check_value"]
