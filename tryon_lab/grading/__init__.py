"""Grading students' phone bundles: ``tryon-lab grade``.

A submission (a bundle folder or a zip of one) is unpacked safely, then put through named checks,
each worth the points the rubric gives it; nothing in it is imported, unpickled or executed.
Modules, in the order a grading uses them:

- ``rubric``: points per check, bars and limits (``tryon_lab/configs/rubric.toml``);
- ``submission``: safe unpacking of zips and folders;  ``filetypes``: what a file's bytes are;
- ``reference``: the course's own bundle;  ``packages``: Core ML packages read as data;
- ``checks``: the named checks;  ``grader``: one submission in this process (``grade_submission``);
- ``classroom``: many submissions, each in its own process with limits (``grade_class``);
- ``report``: JSON, HTML, CSV and text reports;  ``corpus``: good and bad submissions for tests;
- ``errors``: the typed errors.
"""
