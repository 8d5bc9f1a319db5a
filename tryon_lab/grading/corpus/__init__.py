"""A class of good and bad submissions made from one bundle, to test and benchmark the grader.

``make_corpus(bundle, out, rubric)`` writes one submission per ``CASES`` entry: good ones (a
folder, a zip, a zip made by macOS) and one per fault, each named with the check that must fail
on it: unsafe archives and folders (``unsafe``: ``unpack``), pickles and executables (``foreign``:
``file_types``), missing parts and a manifest that lies (``lies``: ``structure``, ``manifest``,
``contract``, ``bits``, ``chunks``), broken programs and wrong numbers (``damaged``: ``programs``,
``numerics``). Except where the manifest's own integrity is the fault, the manifest is re-hashed
after the change, so the named check is the one that catches it. Sizes are made just over
``rubric.limits`` and the chunk budget, so a rubric with small limits (``CORPUS_RUBRIC``) keeps the
corpus small.
"""

from tryon_lab.grading.corpus.case import Case, Sample
from tryon_lab.grading.corpus.edits import edit_manifest, refresh_manifest
from tryon_lab.grading.corpus.make import CASES, make_corpus
from tryon_lab.grading.corpus.rubric import CORPUS_RUBRIC
from tryon_lab.grading.corpus.weights import blob_regions

__all__ = ["CASES", "CORPUS_RUBRIC", "Case", "Sample", "blob_regions", "edit_manifest", "make_corpus",
           "refresh_manifest"]
