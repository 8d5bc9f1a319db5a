"""Exercises of the course notebooks, one module per chapter (``ch00``, ``ch01``, ...).

An exercise runs a student's function or value on fixed inputs: it prints "✓ ... passed" and
returns True, or raises ``ExerciseError`` saying what is wrong (never what the answer is).
"""

from tryon_lab.course.exercises.core import Case, ExerciseError, run_exercise, run_value_exercise

__all__ = ["Case", "ExerciseError", "run_exercise", "run_value_exercise"]
