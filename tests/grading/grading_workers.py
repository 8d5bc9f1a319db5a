"""Grading-process stand-ins for class-run tests; a module of their own so that a child process
imports only this (and the grader), not the test modules."""

import os
import signal
import time


def misbehaving_worker(job):
    """Crash (SIGSEGV) for the student ``crashes``, hang for ``hangs``, grade anyone else normally."""
    from tryon_lab.grading.classroom import grade_job

    if job.student == "crashes":
        os.kill(os.getpid(), signal.SIGSEGV)
    if job.student == "hangs":
        time.sleep(600)
    grade_job(job)
